# One device-tool call for the GPU tests left open by issues #24 and #26 (run from the
# checkout's root on the GPU machine, .whl carried): the sequential-scan kernel tests and the
# flash-linear-attention mixer tests, in parallel processes (Triton compiles are CPU bound).
# The device tool returns at most 8 files, so the logs come back as one
# $OUT/gpu_check.tar.gz. SEQ_TESTS=0 skips the sequential-scan tests, TESTS_S (150) caps each,
# MIXERS (default "GLA,DN,GDN,R7") picks the mixers. fla's kernels autotune (GLA's chunk backward
# compiles dozens of configs per kernel), so GLA and R7 want TESTS_S of 400 or more.
# The quick token-MQAR runs have their own call: benchmarks/quick_mqar_lone_run.sh.
source benchmarks/device_env.sh
export PYTHONUNBUFFERED=1
FINAL=$OUT
OUT=/tmp/gpu_check
mkdir -p $OUT
trap 'tar -C /tmp -czf $FINAL/gpu_check.tar.gz gpu_check' EXIT
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee $OUT/device.txt
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a $OUT/device.txt
T=${TESTS_S:-150}
MIXERS=${MIXERS:-GLA,DN,GDN,R7}
PYT="python3 -m pytest -q -p no:cacheprovider --tb=short -rfE"
K=tests/gpu/test_kernels_gpu.py
X=tests/gpu/test_mixers_gpu.py
if [ "${SEQ_TESTS:-1}" = 1 ]; then
  ( timeout $T $PYT $K -k "dispatch or agrees_with_mamba_ssm or odd_state" > $OUT/t_seq_misc.log 2>&1 ) &
  for d in fp32 bf16; do for l in bld bdl; do
    ( timeout $T $PYT $K -k "test_seq_matches_reference and $d and $l" > $OUT/t_seq_${d}_${l}.log 2>&1 ) &
  done; done
fi
# A process per mixer, CUDA errors reported at the kernel that raised them (they arrive late
# otherwise, and once blamed the GLA test for what may have been an earlier kernel's fault).
for mixer in ${MIXERS//,/ }; do
  sel=$mixer; [ "$mixer" = DN ] && sel="DN and not GDN"
  ( CUDA_LAUNCH_BLOCKING=1 timeout $T $PYT $X -k "$sel" > "$OUT/t_mix_$mixer.log" 2>&1 ) &
done
wait
tail -n 3 $OUT/t_*.log
