# The plain eager loop beside the pipeline on the quick token MQAR (issue #26), one device-tool
# call with .whl carried: the plain model at lr 1e-3 alone, then four settings at once (the GPU
# shared: their steps compare, their seconds do not). Results: one $OUT/plain.tar.gz, summarised
# by benchmarks/quick_mqar_summary.py.
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
R=/tmp/plain; mkdir -p $R
nvidia-smi --query-gpu=name --format=csv,noheader > $R/device.txt
python3 benchmarks/plain_mqar.py $R/alone_plain_1e-3.json --lr 1e-3 --seconds 90 > $R/alone_plain_1e-3.log 2>&1
tail -2 $R/alone_plain_1e-3.log
for cfg in "ours 1e-3" "plain 3e-4" "ours 3e-3" "plain 3e-3"; do set -- $cfg
  python3 benchmarks/plain_mqar.py $R/shared4_$1_$2.json --model $1 --lr $2 --seconds 150 > $R/shared4_$1_$2.log 2>&1 &
done; wait
for f in $R/*.log; do echo $f; tail -2 $f; done
tar -C /tmp -czf $OUT/plain.tar.gz plain
