# Why the compiled Transformer needs more steps than the plain GPT on the quick token MQAR (issue
# #26): one device-tool call with .whl carried runs the eager loop of benchmarks/plain_mqar.py for
# each variant below at once (AdamW lr 1e-3, decay 0.1, the spec's optimizer). The GPU is shared,
# so the steps to 98% compare and the seconds do not. Results: $OUT/bisect.tar.gz (the *.json and logs)
# and a table on stdout (benchmarks/mqar_bisect_summary.py).
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
R=$OUT/bisect; mkdir -p $R
nvidia-smi --query-gpu=name --format=csv,noheader > $R/device.txt
COMMON="--lr 1e-3 --weight-decay 0.1 --steps ${STEPS_CAP:-12000} --seconds ${SECONDS_CAP:-420}"
while read -r name args; do
  [ -z "$name" ] && continue
  python3 benchmarks/plain_mqar.py $R/$name.json $args $COMMON > $R/$name.log 2>&1 &
done <<VARIANTS
${VARIANTS:-ours            --model ours
ours_emb1       --model ours --embedding-std 1
ours_blockdef   --model ours --block-init default
ours_emb1_bdef  --model ours --embedding-std 1 --block-init default
plain           --model plain
plain_emb002    --model plain --embedding-std 0.02
ours_emb1_s1    --model ours --embedding-std 1 --seed 1
ours_s1         --model ours --seed 1}
VARIANTS
wait
python3 benchmarks/mqar_bisect_summary.py $R | tee $R/table.md
tar -C $OUT -czf $OUT/bisect.tar.gz bisect && rm -rf $R   # the device tool returns at most 8 files
