# One device-tool call: S4 and S4-Mamba's paper-size training step (sparse parity, 280 tokens, K = 1,
# tf32, CUDA graph) with the S4D convolution by FFT (TOEPLITZ_MAX_TOKENS = 0, the default) and by
# the Toeplitz product (512), side by side. Back: $OUT/s4_{fft,toeplitz}.{json,md}.
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
A="--task sparse_parity --impls project --packs 1 --precisions tf32 --warmup 3 --steps 10 --repeats 3 --archs s4,s4_mamba --out $OUT"
python3 benchmarks/train_step.py $A --name s4_fft --code "$CODE" 2>&1 | grep -E "ms/step|Error|error"
python3 -c "import sys, runpy; import icl.blocks.s4d as s; s.TOEPLITZ_MAX_TOKENS = 512; sys.argv = ['train_step.py'] + sys.argv[1:]; runpy.run_path('benchmarks/train_step.py', run_name='__main__')" $A --name s4_toeplitz --code "$CODE toeplitz 512" 2>&1 | grep -E "ms/step|Error|error"
