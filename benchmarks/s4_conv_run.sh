# One device-tool call: S4 and S4-Mamba's paper-size training step (sparse parity, 280 tokens, K = 1,
# tf32, CUDA graph) with the S4D convolution by FFT (TOEPLITZ_MAX_TOKENS = 0, the default) and by
# the Toeplitz product (512), side by side. Back: $OUT/s4_{fft,toeplitz,fft_last}.{json,md}.
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
A="--task sparse_parity --impls project --packs 1 --precisions tf32 --warmup 3 --steps 10 --repeats 3 --archs s4,s4_mamba --out $OUT"
python3 benchmarks/train_step.py $A --name s4_fft --code "$CODE" 2>&1 | grep -E "ms/step|Error|error"
python3 -c "import sys, runpy; import icl.blocks.s4d as s; s.TOEPLITZ_MAX_TOKENS = 512; sys.argv = ['train_step.py'] + sys.argv[1:]; runpy.run_path('benchmarks/train_step.py', run_name='__main__')" $A --name s4_toeplitz --code "$CODE toeplitz 512" 2>&1 | grep -E "ms/step|Error|error"
# A third: the FFT along the last axis (u permuted to (K, B, H, L) first), in case the FFT's own
# strided-axis copies are what the profile's aten::copy_ counts.
python3 -c "
import sys, runpy, torch
import icl.blocks.s4d as s
def fft_tokens_last(u, kernel):
    length = u.shape[2]
    u_f = torch.fft.rfft(u.permute(0, 1, 3, 2), n=2 * length)                # (K, B, H, F)
    y = torch.fft.irfft(u_f * torch.fft.rfft(kernel, n=2 * length)[:, None], n=2 * length)
    return y[..., :length].permute(0, 1, 3, 2)
s.causal_conv = fft_tokens_last
sys.argv = ['train_step.py'] + sys.argv[1:]; runpy.run_path('benchmarks/train_step.py', run_name='__main__')" $A --name s4_fft_last --code "$CODE fft tokens-last" 2>&1 | grep -E "ms/step|Error|error"
