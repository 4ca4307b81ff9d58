# One device-tool call (issue #26): specs/quick/mqar.icl trained alone on the GPU at a few
# settings in turn (each alone, so each run's metrics give its own time to 98% accuracy), the
# .whl folder carried. Settings: "LR" (Adam) or "LR:WD" (AdamW with that weight decay), and
# "@SEED" after either for a seed other than the spec's 0. SPEC: another spec of the same
# layout (default specs/quick/mqar.icl).
# The runs' metrics and status (runs/alone_<setting>/) and their summary (benchmarks/
# quick_mqar_summary.py) come back as one $OUT/quick_mqar.tar.gz.
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
R=/tmp/quick_mqar; rm -rf $R; mkdir -p $R   # a warm machine keeps an earlier call's runs
nvidia-smi --query-gpu=name --format=csv,noheader > $R/device.txt
trap 'tar -C /tmp -czf $OUT/quick_mqar.tar.gz quick_mqar' EXIT
for setting in ${SETTINGS:-3e-4 6e-4 1e-3 1e-3:0.1}; do
  seed=0; case $setting in *@*) seed=${setting#*@}; setting=${setting%@*};; esac
  lr=${setting%%:*}; wd=${setting#*:}
  spec=/tmp/mqar_${lr}_${wd}_$seed.icl
  # The spec's own optimizer lines go first (a key set twice is an error), then the setting's.
  plain="/^    optimizer = /d; /^    weight_decay = /d"
  if [ "$wd" = "$setting" ]; then
    sed "$plain; s/^    lr = .*/    lr = $lr/" ${SPEC:-specs/quick/mqar.icl} > $spec
  else
    sed "$plain; s/^    lr = .*/    lr = $lr\n    optimizer = adamw\n    weight_decay = $wd/" ${SPEC:-specs/quick/mqar.icl} > $spec
  fi
  name=lr${lr}_wd${wd}; [ "$wd" = "$setting" ] && name=lr$lr
  if [ "$seed" != 0 ]; then
    sed -i "s/^    lr = \(.*\)/    lr = \1\n    seeds = [$seed]/" $spec; name=${name}_seed$seed
  fi
  rm -rf /tmp/runs_$name   # a finished run there would not train again
  START=$SECONDS
  timeout ${RUN_S:-120} python3 -m icl.cli train $spec --runs-dir /tmp/runs_$name --no-progress 2>&1 | tail -2
  echo "$name: wall $((SECONDS - START)) s for the train command" | tee -a $R/walls.txt
  mkdir -p $R/runs/alone_$name; cp /tmp/runs_$name/*/metrics.jsonl $R/runs/alone_$name/
  cp /tmp/runs_$name/*/status.json $R/runs/alone_$name/ 2>/dev/null   # none where RUN_S cut the run
done
python3 benchmarks/quick_mqar_summary.py $R/runs $R/summary
