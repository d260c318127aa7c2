#!/bin/bash
# slurm-lab.sh - a real single-node Slurm (Debian 12 packages, 22.05) whose Prolog/Epilog are the project's
# hooks, measuring a generated powercap tree (package-0 at a fixed power), the real /sys/fs/cgroup and 2 fake GPUs
# (GRES gpu:2 on /dev/nvidia[0-1], energy from a scripted fake libnvidia-ml.so.1 at a fixed power each).
# Used by the Slurm end-to-end tests (tests/e2e/slurm/README.md). Needs root. Idempotent.
#
#   slurm-lab.sh start       install (apt, first time only), configure and start munged, slurmctld, slurmd,
#                            the fake powercap writer; create the job user. Prints the env file to source.
#   slurm-lab.sh stop [--purge]   stop what start started (by pid file only); --purge also deletes state.
#   slurm-lab.sh status      exit 0 when the cluster answers and the node is usable.
#
# Env knobs (defaults in brackets):
#   LAB [/var/lib/alumet-hpc-e2e/slurm]  everything lives here (not /tmp: state must outlive tmp cleaners)
#   ALUMET_HPC_BIN [<repo>/out/bin/alumet-hpc]  the published binary the hooks run
#   LAB_USER [alumetuser]    ordinary user that submits jobs (root jobs are not what users run)
#   FAKE_POWER_W [50]        power of the generated package-0 zone, W
#   LAB_GPUS [2]             GPUs declared as GRES (gpu:N on /dev/nvidia[0-N-1]) and faked in NVML; 0 = no GPU, nvml off
#   FAKE_GPU_POWER_W ["100 250"]  power of each fake GPU, W, in /dev/nvidiaN order (= Slurm's GPU index)
#   PROLOG_FLAGS [auto]      auto = Alloc,Contain with proctrack/cgroup, Alloc with linuxproc
#   SLURMCTLD_PORT [6817] SLURMD_PORT [6818]
#   LAB_NODES [1]            1: one node named after the host. N >= 2: logical nodes n1..nN on this host, one slurmd each
#                            (Debian's Slurm is built with multiple-slurmd: `slurmd -N nI`, port SLURMD_PORT+I-1, %n in
#                            the spool/pid/log paths; cgroups under <ctrl>/slurm_nI). Each node has its own powercap tree
#                            (FAKE_NODE_POWER_W), its own alumet config nodes/nI/alumet.toml (state_dir, log) that the
#                            hook selects by SLURMD_NODENAME, and the shared data_dir. GPUs: LAB_GPUS defaults to 0 here.
#   FAKE_NODE_POWER_W ["50 80"]  package-0 power of n1, n2, ... (the last one repeats), W
#   LAB_DB_ENV [""]          env.sh of tests/e2e/postgres/pg-lab.sh: rows go to that PostgreSQL server (writer role;
#                            the report gate reads through its read-only role) instead of $LAB/alumet/accounting.db
#   CLUSTER_NAME [lab]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
LAB=${LAB:-/var/lib/alumet-hpc-e2e/slurm}
BIN=${ALUMET_HPC_BIN:-$REPO/out/bin/alumet-hpc}
LAB_USER=${LAB_USER:-alumetuser}
FAKE_POWER_W=${FAKE_POWER_W:-50}
LAB_NODES=${LAB_NODES:-1}; FAKE_NODE_POWER_W=${FAKE_NODE_POWER_W:-50 80}; LAB_DB_ENV=${LAB_DB_ENV:-}; CLUSTER_NAME=${CLUSTER_NAME:-lab}
if [ "$LAB_NODES" -gt 1 ]; then LAB_GPUS=${LAB_GPUS:-0}; else LAB_GPUS=${LAB_GPUS:-2}; fi
FAKE_GPU_POWER_W=${FAKE_GPU_POWER_W:-100 250}
PROLOG_FLAGS=${PROLOG_FLAGS:-auto}; PROCTRACK=${PROCTRACK:-auto}
SLURMCTLD_PORT=${SLURMCTLD_PORT:-6817}; SLURMD_PORT=${SLURMD_PORT:-6818}
export SLURM_CONF=$LAB/etc/slurm.conf
export DEBIAN_FRONTEND=noninteractive

T_START=$(date +%s.%N)
ts() { printf '%6.2fs' "$(echo "$(date +%s.%N) - $T_START" | bc)"; }
log() { echo "[slurm-lab $(ts)] $*"; }
die() { echo "[slurm-lab $(ts)] ERROR: $*" >&2; exit 1; }
# alive PIDFILE [comm]: exists, not a zombie (PID 1 in containers reaps lazily: kill -0 lies), comm matches
alive() {
  local p; p=$(awk '{print $1; exit}' "$1" 2>/dev/null) || return 1     # sampler.pid is "<pid> <start time>"
  [[ "$p" =~ ^[0-9]+$ ]] && [ -r /proc/$p/stat ] || return 1
  [ "$(awk '{print $3}' /proc/$p/stat)" != Z ] || return 1
  [ -z "${2:-}" ] || [ "$(cat /proc/$p/comm 2>/dev/null)" = "$2" ]
}
wait_for() { # wait_for SECONDS DESCRIPTION CMD...
  local t=$1 what=$2; shift 2; local end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt $end ] || die "timeout ($t s) waiting for $what"; sleep 0.2; done
}
stop_pidfile() {   # stop_pidfile PIDFILE COMM [TIMEOUT]
  local f=$1 comm=$2 t=${3:-15} p
  if alive "$f" "$comm"; then
    p=$(cat "$f"); kill -TERM "$p" 2>/dev/null || true; log "sent TERM to $comm ($p)"
    for _ in $(seq 1 $((t * 10))); do alive "$f" "$comm" || break; sleep 0.1; done
    if alive "$f" "$comm"; then kill -KILL "$p" 2>/dev/null || true; log "$comm ($p) needed KILL"; fi
  fi
  rm -f "$f"
}
node_name() { slurmd -C 2>/dev/null | head -1 | sed 's/^NodeName=\([^ ]*\).*/\1/'; }
# The Slurm nodes of this lab and their slurmd pid files.
lab_nodes() { if [ "$LAB_NODES" -gt 1 ]; then seq -f 'n%g' 1 "$LAB_NODES"; else node_name; fi; }
slurmd_pidfile() { if [ "$LAB_NODES" -gt 1 ]; then echo "$LAB/run/slurmd-$1.pid"; else echo "$LAB/run/slurmd.pid"; fi; }

# ------------------------------------------------------------------------------------------------ start
start() {
  [ "$(id -u)" = 0 ] || die "needs root"
  mkdir -p "$LAB/log"
  # 1. packages (first run only; the machine may be shared: wait for another apt instead of failing)
  local PKGS="munge slurmctld slurmd slurm-client bc" missing="" p
  for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    log "installing:$missing"
    local APTO="-o DPkg::Lock::Timeout=600"
    for _ in 1 2 3 4 5; do apt-get $APTO update -qq >/dev/null 2>&1 && break; sleep 5; done
    apt-get $APTO install -y -qq --no-install-recommends $missing >"$LAB/log/apt.log" 2>&1 || { tail -20 "$LAB/log/apt.log"; die "apt-get install failed"; }
  fi
  [ -x "$BIN" ] || die "$BIN missing: run 'make publish' first (or set ALUMET_HPC_BIN)"

  # 2. the job user
  id "$LAB_USER" >/dev/null 2>&1 || { useradd -m -s /bin/bash "$LAB_USER"; log "created user $LAB_USER"; }

  # 3. directories: slurm state, alumet state/data, job output dir writable by the job user
  mkdir -p "$LAB"/{etc,state/ctld,state/d,log,run,hooks,out,powercap,alumet/state,alumet/data,bin}
  # alumet-report as README installs it: the setgid gate (group alumet, which reads the 0640 database), built for
  # this lab's binary and config so that the job user needs no --config.
  getent group alumet >/dev/null || groupadd --system alumet
  rm -f "$LAB/bin/alumet-report"
  gcc -O2 -Wall -Wextra -Werror -DALUMET_HPC_BIN="\"$BIN\"" -DALUMET_SYSTEM_CONFIG="\"$LAB/alumet.toml\"" \
    -o "$LAB/bin/alumet-report" "$REPO/src/report-gate/alumet-report-gate.c" || die "building the alumet-report gate failed (gcc)"
  chown root:alumet "$LAB/bin/alumet-report"; chmod 2755 "$LAB/bin/alumet-report"
  chmod 755 "$LAB" "$LAB"/hooks "$LAB"/alumet "$LAB"/bin; chmod 1777 "$LAB"/out

  # 4. generated powercap tree: package-0 whose energy_uj grows at FAKE_POWER_W. The sampler keeps the file
  #    open and preads offset 0, so the writer rewrites in place ("1<>": no truncation), never renames.
  cat > "$LAB/powercap-writer.sh" <<'EOF'
#!/bin/bash
# powercap-writer.sh ZONE_DIR WATTS: energy_uj = E0 + WATTS x elapsed µs, rewritten every ~5 ms without forks.
z=$1; w=$2; f=$z/energy_uj
e0=$(cat "$f"); t0=${EPOCHREALTIME/./}
fifo=$(mktemp -u); mkfifo "$fifo"; exec 3<>"$fifo"; rm -f "$fifo"   # read -t on an idle fifo = fork-free sleep
trap 'exit 0' TERM INT
while :; do
  now=${EPOCHREALTIME/./}
  printf '%d\n' $(( e0 + (now - t0) * w )) 1<>"$f"
  read -t 0.005 -u 3 || true
done
EOF
  chmod 755 "$LAB/powercap-writer.sh"
  # One tree and writer per node: $LAB/powercap (one node), $LAB/nodes/nI/powercap (logical nodes, FAKE_NODE_POWER_W).
  local NODE_W=($FAKE_NODE_POWER_W) n i=0 pc w pidf Z
  for n in $(lab_nodes); do
    if [ "$LAB_NODES" -gt 1 ]; then pc=$LAB/nodes/$n/powercap; w=${NODE_W[$i]:-${NODE_W[-1]}}; pidf=$LAB/run/powercap-writer-$n.pid
    else pc=$LAB/powercap; w=$FAKE_POWER_W; pidf=$LAB/run/powercap-writer.pid; fi
    i=$((i + 1)); Z="$pc/intel-rapl:0"
    mkdir -p "$Z"
    echo package-0 > "$Z/name"; echo 1 > "$Z/enabled"; echo 262143328850 > "$Z/max_energy_range_uj"
    if ! alive "$pidf"; then
      # A new writer starts its counter from 1 J: the writer never wraps, and a value kept from earlier lab runs
      # would pass max_energy_range_uj within the day (rejected as impossible by the sampler, as it should be).
      echo 1000000 > "$Z/energy_uj"
      setsid "$LAB/powercap-writer.sh" "$Z" "$w" </dev/null >/dev/null 2>&1 &
      echo $! > "$pidf"
      log "powercap writer started: $Z at $w W (pid $(cat "$pidf"))"
    fi
  done

  # 4b. fake GPUs. Slurm: GRES gpu:N on /dev/nvidia[0-N-1]; slurmd stats each File= (major/minor for the devices
  #     cgroup), so the nodes must exist: created here (char 195:N, the NVIDIA major) only when absent, listed in
  #     run/created-devices so that stop removes only those. NVML: the scripted fake library (tests/.../fake_nvml.c),
  #     which reads fake_nvml.script beside itself (the detached sampler has no FAKE_NVML_SCRIPT in its env).
  #     NVML's index order is deliberately the reverse of the minor numbers (/dev/nvidiaN), as can happen on real
  #     nodes. Slurm's GPU index (SLURM_JOB_GPUS in the prolog) is the device's position in gres.conf's File list
  #     (checked on 22.05: File=/dev/nvidia[1-2] gives index 0 for /dev/nvidia1), i.e. N = /dev/nvidiaN here: the
  #     sampler must resolve it through the minor number, not NVML's index.
  local NVML_ON=off
  if [ "$LAB_GPUS" -gt 0 ]; then
    local i minor
    for i in $(seq 0 $((LAB_GPUS - 1))); do
      if [ ! -e "/dev/nvidia$i" ]; then
        mknod -m 666 "/dev/nvidia$i" c 195 "$i"; echo "/dev/nvidia$i" >> "$LAB/run/created-devices"
        log "created /dev/nvidia$i (char 195:$i)"
      fi
    done
    command -v gcc >/dev/null || die "gcc missing (builds the fake libnvidia-ml.so.1)"
    local SRC="$REPO/tests/Alumet.Hpc.Tests/Fakes/nvml/fake_nvml.c" NV="$LAB/nvml"
    mkdir -p "$NV"; chmod 755 "$NV"
    if [ ! -e "$NV/libnvidia-ml.so.1" ] || [ "$SRC" -nt "$NV/libnvidia-ml.so.1" ]; then
      # rename into place: a running sampler has the old copy mapped
      gcc -shared -fPIC -O2 -o "$NV/libnvidia-ml.so.1.new" "$SRC" -ldl && mv -f "$NV/libnvidia-ml.so.1.new" "$NV/libnvidia-ml.so.1"
      log "built $NV/libnvidia-ml.so.1 (fake NVML)"
    fi
    local W=($FAKE_GPU_POWER_W) script="# generated by slurm-lab.sh: NVML index i = /dev/nvidia(N-1-i); energy = 1000 J + P x time since nvmlInit"$'\n'"count $LAB_GPUS"
    for i in $(seq 0 $((LAB_GPUS - 1))); do
      minor=$((LAB_GPUS - 1 - i))
      local w=${W[$minor]:-${W[-1]}}
      script+=$'\n'"dev $i uuid GPU-1ab00000-0000-4000-8000-00000000000$minor"
      script+=$'\n'"dev $i bus_id 00000000:$(printf '%02X' $((0x3B + 0x20 * minor))):00.0"
      script+=$'\n'"dev $i name Fake Lab GPU /dev/nvidia$minor ($w W)"
      script+=$'\n'"dev $i minor $minor"
      script+=$'\n'"dev $i energy 1000000"
      script+=$'\n'"dev $i energy_rate_mw $((w * 1000))"
    done
    echo "$script" > "$NV/fake_nvml.script"
    NVML_ON=auto
  fi

  # 5. alumet-hpc config + hook wrappers (slurmd runs hooks with no argv/PATH/HOME; nothing job-controlled here)
  #    write_config FILE POWERCAP STATE_DIR LOG_FILE. With LAB_DB_ENV: the PostgreSQL server's writer role for the hooks
  #    and its read-only role for the report gate (README, "the report's read-only role").
  local DBTOML=""
  if [ -n "$LAB_DB_ENV" ]; then
    [ -r "$LAB_DB_ENV" ] || die "LAB_DB_ENV=$LAB_DB_ENV is not readable: start tests/e2e/postgres/pg-lab.sh first"
    # shellcheck disable=SC1090
    DBTOML=$(. "$LAB_DB_ENV"; printf '[database]\nurl = "%s"\npassword_file = "%s"\nreport_url = "%s"\nreport_password_file = "%s"\n' \
      "$ALUMET_TEST_PG_URL" "$ALUMET_TEST_PG_PASSWORD_FILE" "$ALUMET_TEST_PG_REPORT_URL" "$ALUMET_TEST_PG_REPORT_PASSWORD_FILE")
  fi
  write_config() {
  cat > "$1" <<EOF
# generated by slurm-lab.sh
[sampler]
rapl_hz = 100
storage_period_ms = 1000
attribution_period_ms = 500
flush_interval_ms = 500
cgroup_wait_s = 10
job_gone_grace_s = 10
stop_timeout_s = 5
linger_s = 1

[sources]
rapl = "on"
estimate = "off"
nvml = "$NVML_ON"

[paths]
powercap_root = "$2"
cgroup_root = "/sys/fs/cgroup"
state_dir = "$3"
data_dir = "$LAB/alumet/data"
database = "$LAB/alumet/accounting.db"
log_file = "$4"
nvml_library = "$LAB/nvml/libnvidia-ml.so.1"

[cluster]
name = "$CLUSTER_NAME"

$DBTOML
EOF
  }
  # $LAB/alumet.toml: the one node's hooks, and the system config of the report gate (also with logical nodes)
  write_config "$LAB/alumet.toml" "$LAB/powercap" "$LAB/alumet/state" "$LAB/log/alumet-hpc.log"
  local CONFIG_ARG="$LAB/alumet.toml"
  if [ "$LAB_NODES" -gt 1 ]; then
    # A node-local state_dir (and outbox) and log per logical node, chosen by the hook from SLURMD_NODENAME, which
    # the case below only lets through as one of the lab's own names.
    for n in $(lab_nodes); do
      mkdir -p "$LAB/nodes/$n/state"; chmod 755 "$LAB/nodes" "$LAB/nodes/$n"
      write_config "$LAB/nodes/$n/alumet.toml" "$LAB/nodes/$n/powercap" "$LAB/nodes/$n/state" "$LAB/log/alumet-hpc.$n.log"
    done
    CONFIG_ARG="$LAB/nodes/\$SLURMD_NODENAME/alumet.toml"
  fi
  local NODE_CASE=""
  [ "$LAB_NODES" -gt 1 ] && NODE_CASE="case \"\$SLURMD_NODENAME\" in $(lab_nodes | paste -sd'|')) ;; *) exit 0 ;; esac"$'\n'
  # Same shape as slurm/alumet-slurm-{prolog,epilog}: exit 0 even when the binary is missing or crashes.
  for k in prolog epilog; do
    printf '#!/bin/sh\n# generated by slurm-lab.sh (see slurm/alumet-slurm-%s)\n%s%s slurm %s --config "%s" </dev/null >/dev/null 2>&1\nexit 0\n' \
      "$k" "$NODE_CASE" "$BIN" "$k" "$CONFIG_ARG" > "$LAB/hooks/$k"
    chmod 755 "$LAB/hooks/$k"
  done

  # 6. slurm.conf (cgroup v1 controllers -> proctrack/cgroup and PrologFlags=Alloc,Contain)
  cg_v1_ok() { for c in cpuset memory freezer cpuacct; do [ -w /sys/fs/cgroup/$c ] || return 1; done; }
  if [ "$PROCTRACK" = auto ]; then if cg_v1_ok; then PROCTRACK=cgroup; else PROCTRACK=linuxproc; fi; fi
  local PT TP JAG
  if [ "$PROCTRACK" = cgroup ]; then
    PT="ProctrackType=proctrack/cgroup"; TP="TaskPlugin=task/cgroup,task/affinity"; JAG="JobAcctGatherType=jobacct_gather/cgroup"
    [ "$PROLOG_FLAGS" = auto ] && PROLOG_FLAGS=Alloc,Contain
  else
    PT="ProctrackType=proctrack/linuxproc"; TP="TaskPlugin=task/none"; JAG="JobAcctGatherType=jobacct_gather/linux"
    [ "$PROLOG_FLAGS" = auto ] && PROLOG_FLAGS=Alloc
  fi
  local NODELINE NODENAME GRESTYPES="" NODEGRES="" NEWGRES="" NODELINES="" DSUFFIX=""
  NODELINE=$(slurmd -C | head -1); NODENAME=$(node_name)
  if [ "$LAB_GPUS" -gt 0 ]; then
    GRESTYPES="GresTypes=gpu"; NODEGRES=" Gres=gpu:$LAB_GPUS"
    NEWGRES=$(printf '# generated by slurm-lab.sh\nAutoDetect=off\nName=gpu File=/dev/nvidia[0-%d]\n' $((LAB_GPUS - 1)))
  fi
  if [ "$LAB_NODES" -gt 1 ]; then
    # multiple-slurmd: every logical node on this host (NodeHostname), its own port; %n = the node's name
    DSUFFIX=-%n
    local port=$SLURMD_PORT
    for n in $(lab_nodes); do
      NODELINES+="$(echo "$NODELINE" | sed "s/^NodeName=$NODENAME /NodeName=$n NodeHostname=$NODENAME NodeAddr=127.0.0.1 Port=$port /")$NODEGRES State=UNKNOWN"$'\n'
      port=$((port + 1))
    done
  else
    NODELINES="$(echo "$NODELINE" | sed "s/^NodeName=$NODENAME /NodeName=$NODENAME NodeAddr=127.0.0.1 /")$NODEGRES State=UNKNOWN"
  fi
  # One node: its 2 cores are shared (up to 8 jobs each) so that the node sampler's 8-concurrent-jobs test runs them
  # at once. Several logical nodes: one job per core, so that -N/-w place jobs as the multi-node tests expect.
  local OVERSUBSCRIBE=NO
  [ "$LAB_NODES" -gt 1 ] || OVERSUBSCRIBE=FORCE:8
  local NEWCONF
  NEWCONF=$(cat <<EOF
# generated by slurm-lab.sh - do not edit (re-run the script instead)
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODENAME(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$LAB/state/ctld
SlurmdSpoolDir=$LAB/state/d$DSUFFIX
SlurmctldPidFile=$LAB/run/slurmctld.pid
SlurmdPidFile=$LAB/run/slurmd$DSUFFIX.pid
SlurmctldLogFile=$LAB/log/slurmctld.log
SlurmdLogFile=$LAB/log/slurmd$DSUFFIX.log
SlurmctldDebug=info
SlurmdDebug=debug
MpiDefault=none
$GRESTYPES
$PT
$TP
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
ReturnToService=2
Prolog=$LAB/hooks/prolog
Epilog=$LAB/hooks/epilog
PrologFlags=$PROLOG_FLAGS
$JAG
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/none
AcctGatherEnergyType=acct_gather_energy/none
JobCompType=jobcomp/none
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
Waittime=0
$NODELINES
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=$OVERSUBSCRIBE
EOF
)
  local CONF_CHANGED=0
  if [ "$(cat "$SLURM_CONF" 2>/dev/null)" != "$NEWCONF" ]; then echo "$NEWCONF" > "$SLURM_CONF"; CONF_CHANGED=1; log "wrote $SLURM_CONF ($PROCTRACK, PrologFlags=$PROLOG_FLAGS)"; fi
  local GRESCONF=$LAB/etc/gres.conf
  if [ -z "$NEWGRES" ]; then
    [ -e "$GRESCONF" ] && { rm -f "$GRESCONF"; CONF_CHANGED=1; }
  elif [ "$(cat "$GRESCONF" 2>/dev/null)" != "$NEWGRES" ]; then
    echo "$NEWGRES" > "$GRESCONF"; CONF_CHANGED=1; log "wrote $GRESCONF (gpu:$LAB_GPUS)"
  fi
  cat > "$LAB/etc/cgroup.conf" <<'EOF'
CgroupPlugin=autodetect
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=yes
ConstrainRAMSpace=yes
ConstrainDevices=no
EOF
  cat > "$LAB/env.sh" <<EOF
export SLURM_CONF=$SLURM_CONF
export ALUMET_E2E_SLURM_LAB=$LAB
export ALUMET_E2E_SLURM_USER=$LAB_USER
export ALUMET_HPC_BIN=$BIN
EOF

  # 7. munge
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already answering"
  else
    [ -s /etc/munge/munge.key ] || { /usr/sbin/mungekey --create >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    mkdir -p /run/munge; chown munge:munge /run/munge; chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged --force
    cp /run/munge/munged.pid "$LAB/run/munged.pid"      # marks "started by the lab" for stop
    wait_for 10 munged bash -c 'munge -n | unmunge'
    log "munged started (pid $(cat "$LAB/run/munged.pid"))"
  fi

  # 8. slurmctld + slurmd
  local d
  if [ "$CONF_CHANGED" = 1 ]; then
    local f
    for f in $(for n in $(lab_nodes); do slurmd_pidfile "$n"; done) "$LAB/run/slurmctld.pid"; do
      d=$(basename "$f" .pid); d=${d%%-*}
      if alive "$f" "$d"; then
        log "config changed: restarting $d ($f)"; kill "$(cat "$f")"
        for _ in $(seq 1 100); do alive "$f" "$d" || break; sleep 0.1; done
      fi
    done
  fi
  local CTLD_STARTED=0 SCHED0
  SCHED0=$(grep -c 'SchedulerParameters=' "$LAB/log/slurmctld.log" 2>/dev/null || true)
  if ! alive "$LAB/run/slurmctld.pid" slurmctld; then slurmctld; CTLD_STARTED=1; log "slurmctld started"; fi
  wait_for 30 slurmctld scontrol ping
  local SLURMD_T0=0 n
  for n in $(lab_nodes); do
    if ! alive "$(slurmd_pidfile "$n")" slurmd; then
      SLURMD_T0=$(( $(date +%s) - 1 ))
      if [ "$LAB_NODES" -gt 1 ]; then slurmd -N "$n"; else slurmd; fi
      log "slurmd started for $n"
    fi
  done
  registered() { local t; t=$(scontrol show node "$1" 2>/dev/null | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p'); [ -n "$t" ] && [ "$t" != None ] && [ "$(date -d "$t" +%s 2>/dev/null || echo 0)" -ge "$SLURMD_T0" ]; }
  local end=$(( $(date +%s) + 60 )) s
  for n in $(lab_nodes); do
    while :; do
      s=$(sinfo -h -n "$n" -o %T 2>/dev/null || true)
      case "$s" in
        idle|mixed|allocated|completing) registered "$n" && break ;;
        drain*|down*) scontrol update nodename="$n" state=resume 2>/dev/null || true ;;
      esac
      [ "$(date +%s)" -lt $end ] || die "node $n not idle after 60 s (state '$s'); see $LAB/log/slurmd*.log"
      sleep 0.2
    done
  done
  # slurmctld's first scheduling pass comes ~3 s after start; batch jobs sit PENDING until then.
  if [ "$CTLD_STARTED" = 1 ]; then
    wait_for 20 "first scheduler pass" bash -c "[ \$(grep -c 'SchedulerParameters=' '$LAB/log/slurmctld.log') -gt ${SCHED0:-0} ]"
  fi
  log "node(s) $(lab_nodes | paste -sd' ') $s - ready.  source $LAB/env.sh"
}

# ------------------------------------------------------------------------------------------------ stop
stop() {
  if alive "$LAB/run/slurmctld.pid" slurmctld; then
    # squeue fails when munged is already gone (the labs share it): stop the daemons anyway, not exit under set -e.
    local ids; ids=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ') || ids=""
    if [ -n "${ids// }" ]; then
      log "cancelling jobs: $ids"; scancel $ids 2>/dev/null || true      # epilogs stop their samplers
      for _ in $(seq 1 100); do [ -z "$(squeue -h -o %i 2>/dev/null || true)" ] && break; sleep 0.2; done
    fi
  fi
  local f
  for f in "$LAB"/run/slurmd.pid "$LAB"/run/slurmd-*.pid; do [ -e "$f" ] && stop_pidfile "$f" slurmd; done
  stop_pidfile "$LAB/run/slurmctld.pid" slurmctld
  stop_pidfile "$LAB/run/munged.pid" munged
  for f in "$LAB"/run/powercap-writer.pid "$LAB"/run/powercap-writer-*.pid; do [ -e "$f" ] && stop_pidfile "$f" powercap-writer; done
  local p
  # samplers left behind (should be none: every epilog stops its own) - only those recorded by our state dir
  for f in "$LAB"/alumet/state/slurm/*/sampler.pid "$LAB"/nodes/*/state/slurm/*/sampler.pid; do
    [ -e "$f" ] && alive "$f" alumet-hpc && { p=$(awk '{print $1}' "$f"); kill -KILL "$p" 2>/dev/null || true; log "killed leftover sampler $p"; }
  done
  # empty leftover job cgroups (v1) so the next start is clean
  for f in /sys/fs/cgroup/*/slurm_*/ /sys/fs/cgroup/*/slurm/; do [ -d "$f" ] && find "$f" -depth -type d -exec rmdir {} \; 2>/dev/null; done
  # GPU device nodes start created (only those: a real /dev/nvidiaN is never in the list)
  if [ -s "$LAB/run/created-devices" ]; then
    while read -r f; do
      [[ "$f" =~ ^/dev/nvidia[0-9]+$ ]] && [ -c "$f" ] && [ "$(stat -c %t "$f")" = c3 ] && rm -f "$f" && log "removed $f"
    done < "$LAB/run/created-devices"
    rm -f "$LAB/run/created-devices"
  fi
  if [ "${1:-}" = --purge ]; then
    rm -rf "$LAB"/state "$LAB"/log "$LAB"/out "$LAB"/run "$LAB"/alumet "$LAB"/powercap "$LAB"/nodes
    log "purged state under $LAB"
  fi
  log "stopped"
}

status() {
  local n
  alive "$LAB/run/slurmctld.pid" slurmctld && scontrol ping >/dev/null 2>&1 || return 1
  for n in $(lab_nodes); do
    alive "$(slurmd_pidfile "$n")" slurmd || return 1
    case "$(sinfo -h -n "$n" -o %T 2>/dev/null)" in idle|mixed|allocated|completing) ;; *) return 1 ;; esac
  done
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "${1:-}" ;;
  status) status ;;
  *) echo "usage: $0 start|stop [--purge]|status" >&2; exit 2 ;;
esac
