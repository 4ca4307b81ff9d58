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
# (setsid), its log in RUNS_DIR/detached.log; wait prints where the study stands
# (`icl status` of specs/$ICL_SCALE/study.icl, ICL_SCALE=reduced unless set). Why `stop` exists:
# SIGTERM to Snakemake alone lets it finish its running jobs (and start no evaluations),
# so stop ends the whole process group; killed trainings resume from their checkpoints.
set -uo pipefail

usage() { sed -n '6,9p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 runs=$2
shift 2
pidfile="$runs/detached.pid"
log="$runs/detached.log"
here=$(cd "$(dirname "$0")/../.." && pwd)

running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

status() {
  icl status "$here/specs/${ICL_SCALE:-reduced}/study.icl" --runs-dir "$runs" 2>&1 | tail -3
  tail -n 3 "$log" 2>/dev/null
}

case "$cmd" in
start)
  if running; then echo "error: a pipeline is already running in $runs (pid $(cat "$pidfile"))" >&2; exit 1; fi
  mkdir -p "$runs"
  # runs_dir joins the caller's --config (a second --config flag would replace the first)
  args=() joined=0
  for a in "$@"; do
    args+=("$a")
    if [ "$a" = --config ] && [ $joined = 0 ]; then args+=("runs_dir=$runs"); joined=1; fi
  done
  [ $joined = 1 ] || args+=(--config "runs_dir=$runs")
  setsid snakemake -s "$here/Snakefile" "${args[@]}" > "$log" 2>&1 < /dev/null &
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
  running && echo "still running" || echo "finished"
  status
  ;;
stop)
  if running; then
    # setsid made the pipeline a process-group leader: its pid is the group's id
    kill -TERM -- "-$(cat "$pidfile")"
    for _ in $(seq 30); do running || break; sleep 1; done
    running && kill -KILL -- "-$(cat "$pidfile")"
    echo "stopped"
  else
    echo "not running"
  fi
  ;;
pack)
  [ $# -eq 1 ] || usage
  tar czf "$1" -C "$runs" --exclude='*.pt' --exclude=detached.pid .
  echo "$1: $(du -h "$1" | cut -f1)"
  ;;
*)
  usage
  ;;
esac
