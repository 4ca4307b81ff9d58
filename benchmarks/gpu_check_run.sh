# One device-tool call for the checks left open by issues #24 and #26 (run from the checkout's
# root on the GPU machine, .whl carried):
# 1. at once: the quick token-MQAR sweep (specs/quick/mqar_sweep.icl, one pack; its runs are
#    compared by steps, so sharing the GPU does not matter) and, in parallel
#    processes (Triton compiles are CPU bound), the sequential-scan GPU tests and the
#    flash-linear-attention mixer tests;
# 2. the sweep's lr whose error first reaches 2% (benchmarks/quick_mqar_pick.py);
# 3. specs/quick/mqar.icl at that lr, alone on the GPU: its metrics give the time to
#    98% accuracy.
source benchmarks/device_env.sh
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee $OUT/device.txt
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a $OUT/device.txt
mkdir -p $OUT/sweep $OUT/mqar
T=${TESTS_S:-150}
PYT="python3 -m pytest -q -p no:cacheprovider"
K=tests/gpu/test_kernels_gpu.py
X=tests/gpu/test_mixers_gpu.py
( timeout $T $PYT $K -k "dispatch or agrees_with_mamba_ssm or odd_state" > $OUT/t_seq_misc.log 2>&1 ) &
for d in fp32 bf16; do for l in bld bdl; do
  ( timeout $T $PYT $K -k "test_seq_matches_reference and $d and $l" > $OUT/t_seq_${d}_${l}.log 2>&1 ) &
done; done
( timeout $T $PYT $X -k "fp32" > $OUT/t_mix_fp32.log 2>&1 ) &
( timeout $T $PYT $X -k "not fp32" > $OUT/t_mix_rest.log 2>&1 ) &
timeout ${SWEEP_S:-300} python3 -m icl.cli train specs/quick/mqar_sweep.icl --runs-dir /tmp/sweep --no-progress \
    2>&1 | tail -5 | tee $OUT/sweep/train.log
wait
tail -n 3 $OUT/t_*.log
for d in /tmp/sweep/*/; do cp $d/metrics.jsonl $OUT/sweep/$(basename $d).jsonl; done
LR=$(python3 benchmarks/quick_mqar_pick.py specs/quick/mqar_sweep.icl /tmp/sweep $OUT/sweep/pick.json)
echo "chosen lr $LR" | tee -a $OUT/sweep/train.log
sed "s/^    lr = .*/    lr = $LR/" specs/quick/mqar.icl > /tmp/mqar.icl
grep -n "lr =" /tmp/mqar.icl | tee -a $OUT/mqar/train.log
timeout ${MQAR_S:-150} python3 -m icl.cli train /tmp/mqar.icl --runs-dir /tmp/qruns --no-progress \
    2>&1 | tail -5 | tee -a $OUT/mqar/train.log
cp /tmp/qruns/*/metrics.jsonl /tmp/qruns/*/status.json $OUT/mqar/ 2>/dev/null
ls /tmp/qruns >> $OUT/mqar/train.log
