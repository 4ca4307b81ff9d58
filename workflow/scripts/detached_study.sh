#!/usr/bin/env bash
# Run the study's pipeline detached from the shell that starts it, for GPU time that comes
# in short sessions (a remote command with a time limit, an interactive allocation): the
# pipeline goes on between sessions, and each session only looks at it and copies back
# the small files of the runs.
#
#   workflow/scripts/detached_study.sh start RUNS_DIR [SNAKEMAKE ARGS...]
#   workflow/scripts/detached_study.sh wait RUNS_DIR SECONDS   # until done or SECONDS pass
#   workflow/scripts/detached_study.sh stop RUNS_DIR           # the pipeline and its jobs
#   workflow/scripts/detached_study.sh pack RUNS_DIR TARBALL   # every file but the weights
#
# start runs `snakemake ARGS... --config runs_dir=RUNS_DIR` in a new process session
# (setsid), its log in RUNS_DIR/detached.log; wait prints Snakemake's last progress line
# (`icl status SPEC --runs-dir RUNS_DIR` tells run by run). Why `stop` exists: SIGTERM to
# Snakemake alone lets it finish its running jobs (and start no evaluations), so stop ends
# the whole process group; killed trainings resume from their checkpoints.
set -uo pipefail

usage() { grep '^#   workflow/scripts/detached_study.sh' "$0" | cut -c3- >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 runs=$2
shift 2
pidfile="$runs/detached.pid"
log="$runs/detached.log"
here=$(cd "$(dirname "$0")/../.." && pwd)
# Snakemake's script, or its module where only the package is installed (pip --target)
if command -v snakemake > /dev/null; then snakemake=(snakemake); else snakemake=(python3 -m snakemake); fi

# The recorded pid is still our Snakemake: not a zombie (empty cmdline), not a reused pid.
running() { [ -s "$pidfile" ] && grep -qs snakemake "/proc/$(cat "$pidfile")/cmdline"; }

# Snakemake's own progress line ("12 of 40 steps (30%) done"), then how it ended, if it has.
status() {
  grep -E 'steps \([0-9]+%\) done' "$log" 2>/dev/null | tail -n 1
  if grep -qs "Exiting because a job execution failed\|Error in rule\|WorkflowError" "$log"; then
    echo "failed: see $log"
  fi
}

case "$cmd" in
start)
  if running; then echo "error: a pipeline is already running in $runs (pid $(cat "$pidfile"))" >&2; exit 1; fi
  mkdir -p "$runs"
  # runs_dir joins the caller's --config (a second --config flag would replace the first)
  args=() joined=0
  for a in "$@"; do
    args+=("$a")
    if { [ "$a" = --config ] || [ "$a" = -C ]; } && [ $joined = 0 ]; then args+=("runs_dir=$runs"); joined=1; fi
  done
  [ $joined = 1 ] || args+=(--config "runs_dir=$runs")
  # a pipeline killed by `stop` may have left Snakemake's lock behind; nothing runs now
  "${snakemake[@]}" -s "$here/Snakefile" "${args[@]}" --unlock > /dev/null 2>&1
  setsid "${snakemake[@]}" -s "$here/Snakefile" "${args[@]}" > "$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 5); do running || break; sleep 1; done  # a config error ends it at once
  if running; then
    echo "started (pid $(cat "$pidfile")), log $log"
  elif grep -q "steps (100%) done\|Nothing to be done" "$log"; then
    echo "finished"; status
  else
    echo "error: the pipeline stopped at once; the end of $log:" >&2; tail -n 20 "$log" >&2; exit 1
  fi
  ;;
wait)
  [ $# -eq 1 ] || usage
  end=$((SECONDS + $1))
  while running && [ $SECONDS -lt "$end" ]; do sleep 10; done
  if running; then echo "still running"; else echo "finished"; fi
  status
  ;;
stop)
  # setsid made the pipeline a process-group leader: its pid is the group's id. Wait for
  # the whole group (its jobs, which may outlive Snakemake), not only Snakemake.
  pgid=$(cat "$pidfile" 2>/dev/null)
  group() { [ -n "$pgid" ] && kill -0 -- "-$pgid" 2>/dev/null; }
  if running || group; then
    kill -TERM -- "-$pgid" 2>/dev/null
    for _ in $(seq 30); do group || break; sleep 1; done
    group && kill -KILL -- "-$pgid" 2>/dev/null
    for _ in $(seq 10); do group || break; sleep 1; done
    echo "stopped"
  else
    echo "not running"
  fi
  ;;
pack)
  [ $# -eq 1 ] || usage
  # not the weights, nor the temporaries of files being written (training/atomic.py)
  tar czf "$1" -C "$runs" --exclude='*.pt' --exclude='.*.tmp' --exclude=detached.pid . || exit 1
  echo "$1: $(du -h "$1" | cut -f1)"
  ;;
*)
  usage
  ;;
esac
