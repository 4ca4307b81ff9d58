#!/usr/bin/env bash
# Start a one-node SLURM cluster on loopback (munged, slurmctld, slurmd) with all its
# state under STATE_DIR, and wait until the node takes jobs.
#
#   bash tests/slurm/setup.sh STATE_DIR [CPUS] [MEMORY_MB]
#
# Then put STATE_DIR/bin first on PATH: its sbatch, srun, squeue, ... talk to this
# cluster. tests/slurm/teardown.sh STATE_DIR stops it and removes STATE_DIR.
# Needs root and Debian's slurm-wlm and munge packages. Exit status 3: they are missing.
set -euo pipefail

state=${1:?usage: setup.sh STATE_DIR [CPUS] [MEMORY_MB]}
cpus=${2:-2}
memory_mb=${3:-4000}
here=$(cd "$(dirname "$0")" && pwd)

for program in munged slurmctld slurmd sbatch squeue sinfo; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "setup.sh: '$program' not found (apt-get install slurm-wlm munge)" >&2
    exit 3
  fi
done

mkdir -p "$state"/munge "$state"/ctld "$state"/slurmd
state=$(cd "$state" && pwd)
chmod 700 "$state"/munge

# A fresh key for this cluster only; munged insists on strict ownership and modes.
dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$state/munge/munge.key"
munged --force \
  --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
  --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" \
  --seed-file="$state/munge/munged.seed"

# Two free loopback ports for slurmctld and slurmd.
read -r ctld_port slurmd_port < <(python3 - <<'PY'
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
)

sed -e "s|@STATE@|$state|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY_MB@|$memory_mb|g" \
    -e "s|@CTLD_PORT@|$ctld_port|g" -e "s|@SLURMD_PORT@|$slurmd_port|g" \
    "$here/slurm.conf.in" > "$state/slurm.conf"
export SLURM_CONF="$state/slurm.conf"

# SLURM's commands find this cluster through SLURM_CONF. Wrappers set it, because the
# executor plugin's job step removes every SLURM_* variable before its own srun call
# (on a real cluster, slurm.conf sits in /etc/slurm and nothing needs setting).
mkdir -p "$state/bin"
for program in sbatch srun squeue scancel sinfo scontrol sacct sacctmgr sshare; do
  real=$(PATH=${PATH//"$state/bin:"/} command -v "$program") || continue
  printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$real" > "$state/bin/$program"
  chmod +x "$state/bin/$program"
done

slurmctld -c -f "$SLURM_CONF"   # -c: no saved state from an earlier cluster
slurmd -f "$SLURM_CONF" -N localhost

# The node answers once slurmd has registered; give up after 60 s.
for _ in $(seq 120); do
  node_state=$(sinfo --noheader --nodes=localhost --format=%T 2>/dev/null || true)
  case "$node_state" in
    idle*|mixed*|allocated*) echo "SLURM is up: $SLURM_CONF (node $node_state, $cpus CPUs)"; exit 0 ;;
  esac
  sleep 0.5
done
echo "setup.sh: the node did not come up (state: '${node_state:-none}'); logs in $state" >&2
tail -n 20 "$state"/slurmctld.log "$state"/slurmd.log "$state"/munge/munged.log >&2 || true
exit 1
