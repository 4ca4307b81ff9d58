# One device-tool call: a chunk of a study (some runs of SPEC) trained on the GPU as the
# pipeline trains them (`icl train --pack auto`: runs that may share a pack train as one) and
# evaluated, the .whl folder carried. Their folders without weights (status.json,
# metrics.jsonl, eval-*.json) come back as one $OUT/chunk.tar.gz: unpack it into the study's
# runs folder (results/zoo/runs for specs/zoo.icl) and commit it, as results/reduced was built.
#   SPEC      the spec (default specs/zoo.icl)
#   SELECT    which runs: a Python expression over a run's record `r` of `icl runs --json`
#             (default: all), e.g. "r['model'] == 'transformer' and r['task'] == 'mqar'"
#   TRAIN_S   a cap on the training command's seconds (default 480): a run it cuts off keeps
#             its checkpoint in /tmp/chunk_runs, which a warm machine keeps for the next call
#             (an idle machine goes back after 30 s), so calling again with the same SELECT resumes it
# Evaluation runs for the runs that finished training; a run not finished comes back with its
# metrics and status so far (the report lists it as in progress).
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
SPEC=${SPEC:-specs/zoo.icl}
D=/tmp/chunk_runs; mkdir -p $D
nvidia-smi --query-gpu=name --format=csv,noheader > $D/device.txt
trap 'tar -C $D --exclude="*.pt" --exclude=".lock" --exclude="*.tmp" -czf $OUT/chunk.tar.gz .' EXIT
python3 -m icl.cli runs --json "$SPEC" > /tmp/chunk_all.json || exit 2
SELECT=${SELECT:-True} python3 - > /tmp/chunk_ids <<'EOF'
import json, os
select = os.environ["SELECT"]
for r in json.load(open("/tmp/chunk_all.json")):
    if eval(select, {}, {"r": r}):
        print(r["id"])
EOF
runs=$(sed 's/^/--run /' /tmp/chunk_ids | tr '\n' ' ')
echo "$(wc -l < /tmp/chunk_ids) runs of $SPEC: $(tr '\n' ' ' < /tmp/chunk_ids)" | tee -a $D/chunk.log
START=$SECONDS
timeout ${TRAIN_S:-480} python3 -m icl.cli train "$SPEC" $runs --runs-dir $D --pack auto --no-progress 2>&1 \
    | tail -n 20 | tee -a $D/chunk.log
echo "training: $((SECONDS - START)) s" | tee -a $D/chunk.log
done_runs=$(for id in $(cat /tmp/chunk_ids); do [ -f $D/$id/model.pt ] && echo "--run $id"; done | tr '\n' ' ')
if [ -n "$done_runs" ]; then
  START=$SECONDS
  python3 -m icl.cli eval "$SPEC" --runs-dir $D $done_runs --no-progress 2>&1 | tail -n 5 | tee -a $D/chunk.log
  echo "evaluation: $((SECONDS - START)) s" | tee -a $D/chunk.log
fi
