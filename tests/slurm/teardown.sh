#!/usr/bin/env bash
# Stop the cluster tests/slurm/setup.sh started in STATE_DIR and remove STATE_DIR.
# Safe to run on a half-started cluster, or twice.
#
#   bash tests/slurm/teardown.sh STATE_DIR
set -uo pipefail

state=${1:?usage: teardown.sh STATE_DIR}
[ -d "$state" ] || exit 0

# Cancel what is still queued or running, so slurmd's job steps end with it.
if [ -f "$state/slurm.conf" ] && command -v scancel >/dev/null 2>&1; then
  SLURM_CONF="$state/slurm.conf" timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
fi

stop() {  # stop the daemon whose pid is in file $1: TERM, then KILL after 10 s
  local pid_file=$1 pid
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file" 2>/dev/null) || return 0
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

stop "$state/slurmd.pid"
stop "$state/slurmctld.pid"
stop "$state/munge/munged.pid"
rm -rf "$state"
