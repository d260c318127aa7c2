#!/bin/bash
# oar-lab.sh -- single-node REAL OAR 2.5 lab (Debian 12 packages + PostgreSQL) wired to alumet-hpc.
#   oar-lab.sh start   install (first time), configure and start; idempotent; exit 0 = ready
#   oar-lab.sh stop    delete jobs, stop what start started (by pid file), restore oar.conf
#   oar-lab.sh status  exit 0 when Almighty, the node sshd and the node (Alive) are up
# No systemd needed: services start through their SysV init scripts.
#
# Environment (all optional):
#   ALUMET_OAR_LAB      lab directory (default /var/lib/alumet-oar-lab; not /tmp: OAR purges users' /tmp files)
#   ALUMET_HPC_BIN      published binary (default <repo>/out/bin/alumet-hpc)
#   ALUMET_OAR_MODE     rm (default): resource-manager hook starts samplers on every node, prologue/epilogue
#                       installed too (they must then do nothing); prologue: stock resource manager,
#                       samplers started/stopped by the prologue/epilogue only
#   ALUMET_OAR_USER     unprivileged job user (default alumetoar; OAR refuses jobs from root and oar)
#   ALUMET_OAR_CORES    core resources on localhost (default 8, spread over the machine's CPUs: cpuset = core mod nproc,
#                       so that 8 jobs run at once on one node sampler as on a real node)
#   ALUMET_OAR_POWER_W  power of the generated RAPL package-0 zone, advanced by powercap-ticker.sh (default 40)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
LAB=${ALUMET_OAR_LAB:-/var/lib/alumet-oar-lab}
BIN=${ALUMET_HPC_BIN:-$REPO/out/bin/alumet-hpc}
MODE=${ALUMET_OAR_MODE:-rm}
JOBUSER=${ALUMET_OAR_USER:-alumetoar}
CORES=${ALUMET_OAR_CORES:-8}
POWER_W=${ALUMET_OAR_POWER_W:-40}
CONF=/etc/oar/oar.conf
STOCK_RM=/etc/oar/job_resource_manager_cgroups.pl
T0=$(date +%s%N)
log() { printf "[oar-lab %s] %s\n" "$(date +%T.%3N)" "$*"; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
descendants() { local c; for c in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do echo "$c"; descendants "$c"; done; }
kill_tree() {
  local pids; pids="$1 $(descendants "$1")"
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$1" 2>/dev/null || break; sleep 0.25; done
  kill -KILL $pids 2>/dev/null || true
}
export DEBIAN_FRONTEND=noninteractive

ready() {
  alive /var/run/oar-server.pid \
    && su oar -s /bin/bash -c "ssh -p 6667 -x -T -o BatchMode=yes -o ConnectTimeout=3 localhost true" >/dev/null 2>&1 \
    && ! grep -qvE '^localhost$|: Alive$' <<<"$(oarnodes -s 2>/dev/null)" && [ -n "$(oarnodes -s 2>/dev/null)" ]
}

setconf() {  # setconf KEY VALUE ("none" comments it out)
  local k=$1 v=$2
  if [ "$v" = none ]; then sed -i "s|^$k=|#$k=|" "$CONF"; return; fi
  if grep -q "^$k=" "$CONF"; then sed -i "s|^$k=.*|$k=\"$v\"|" "$CONF"; else echo "$k=\"$v\"" >> "$CONF"; fi
}

start() {
  [ -x "$BIN" ] || { echo "oar-lab: $BIN missing (dotnet publish src/Alumet.Hpc.Cli -c Release -r linux-x64 -o out/bin)" >&2; exit 1; }
  mkdir -p "$LAB"/{hooks,run,state,data,powercap}; chmod 755 "$LAB" "$LAB/hooks"

  # 1. packages
  local pkgs="postgresql oar-server oar-node oar-user openssh-server taktuk sqlite3" missing=""
  for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    log "installing:$missing"
    apt-get -o DPkg::Lock::Timeout=900 update -qq || true
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq $missing >"$LAB/run/apt.log" 2>&1 || { tail -30 "$LAB/run/apt.log"; exit 1; }
  fi
  log "packages ok (oar $(dpkg-query -W -f='${Version}' oar-server))"

  # 2. alumet-hpc: binary, config, generated RAPL tree (the lab machine has no RAPL)
  install -m 755 "$BIN" "$LAB/alumet-hpc"
  [ -f "$(dirname "$BIN")/libe_sqlite3.so" ] && install -m 644 "$(dirname "$BIN")/libe_sqlite3.so" "$LAB/"
  [ -f "$(dirname "$BIN")/alumet-hpc-sampler" ] && install -m 755 "$(dirname "$BIN")/alumet-hpc-sampler" "$LAB/"
  ln -sf "$LAB/alumet-hpc" "$LAB/alumet-report"
  local z="$LAB/powercap/intel-rapl:0"
  if [ ! -f "$z/energy_uj" ]; then
    mkdir -p "$z"; echo package-0 > "$z/name"; echo 1 > "$z/enabled"
    echo 262143328850 > "$z/max_energy_range_uj"; printf '%020d\n' 0 > "$z/energy_uj"
  fi
  cat > "$LAB/alumet.toml" <<TOML
# written by tests/e2e/oar/oar-lab.sh
[sampler]
rapl_hz = 100.0
storage_period_ms = 1000
attribution_period_ms = 500
flush_interval_ms = 500
stop_timeout_s = 20.0
linger_s = 1.0
cgroup_wait_s = 10.0
job_gone_grace_s = 5.0
[sources]
rapl = "on"
estimate = "off"
nvml = "off"
[paths]
powercap_root = "$LAB/powercap"
cgroup_root = "/sys/fs/cgroup"
state_dir = "$LAB/state"
data_dir = "$LAB/data"
database = "$LAB/accounting.db"
log_file = "$LAB/alumet-hpc.log"
[cluster]
name = "oarlab"
TOML
  if ! alive "$LAB/run/powercap-ticker.pid"; then
    setsid "$HERE/powercap-ticker.sh" "$z" "$POWER_W" </dev/null >"$LAB/run/powercap-ticker.log" 2>&1 &
    echo $! > "$LAB/run/powercap-ticker.pid"
  fi

  # 3. hooks: the project's wrappers, pointing at the lab binary and config
  install -m 755 "$REPO/oar/alumet-oar-prologue" "$REPO/oar/alumet-oar-epilogue" "$LAB/hooks/"
  printf 'ALUMET_HPC_BIN=%s\nALUMET_HPC_CONFIG=%s\n' "$LAB/alumet-hpc" "$LAB/alumet.toml" > "$LAB/hooks/alumet-oar.env"
  "$REPO/oar/alumet-oar-make-resource-manager" "$STOCK_RM" "$LAB/hooks/job_resource_manager_alumet.pl" \
      "$LAB/alumet-hpc" "$LAB/alumet.toml" >/dev/null

  # 4. oar.conf (the original is kept and restored by stop)
  [ -f "$LAB/run/oar.conf.orig" ] || cp -p "$CONF" "$LAB/run/oar.conf.orig"
  setconf DB_BASE_PASSWD "oarlabpw"; setconf DB_BASE_PASSWD_RO "oarlabropw"
  setconf LOG_LEVEL "3"
  setconf SCHEDULER_MIN_TIME_BETWEEN_2_CALLS "1"   # default 5: up to ~10 s start latency
  setconf PROLOGUE_EXEC_FILE "$LAB/hooks/alumet-oar-prologue"
  setconf EPILOGUE_EXEC_FILE "$LAB/hooks/alumet-oar-epilogue"
  setconf PROLOGUE_EPILOGUE_TIMEOUT "60"
  # A failing server prologue stops every queue: none in the lab.
  setconf SERVER_PROLOGUE_EXEC_FILE none; setconf SERVER_EPILOGUE_EXEC_FILE none
  if [ "$MODE" = rm ]; then setconf JOB_RESOURCE_MANAGER_FILE "$LAB/hooks/job_resource_manager_alumet.pl"
  else setconf JOB_RESOURCE_MANAGER_FILE "$STOCK_RM"; fi
  touch /var/log/oar.log; chown oar /var/log/oar.log
  log "oar.conf: mode=$MODE"

  # 5. PostgreSQL + OAR database
  local pg; pg=$(pg_lsclusters -h | awk '$2=="main"{print $1; exit}')
  [ -n "$pg" ] || { pg=$(ls /usr/lib/postgresql | sort -n | tail -1); pg_createcluster "$pg" main >/dev/null; }
  if ! pg_lsclusters -h | awk -v v="$pg" '$1==v && $2=="main"' | grep -q online; then
    pg_ctlcluster "$pg" main start; touch "$LAB/run/pg_started_by_lab"
  fi
  for _ in $(seq 1 30); do su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break; sleep 0.5; done
  if [ "$(su postgres -c "psql -qtAc \"select 1 from pg_database where datname='oar'\"")" != 1 ]; then
    oar-database --create --db-is-local >"$LAB/run/oar-database.log" 2>&1 || { cat "$LAB/run/oar-database.log"; exit 1; }
    log "oar database created"
  fi

  # 5b. the job type alumet=raw (oarsub -t alumet=raw asks for raw storage): OAR's default admission rule "Check if job
  #     types are valid" refuses every type it does not list, so the site adds this one to its list (oar/README.md).
  su postgres -c "psql -qAt -d oar" >/dev/null <<'SQL'
UPDATE admission_rules SET rule = replace(rule, 'qr/^state=permissive$/,', 'qr/^state=permissive$/, qr/^alumet=raw$/,')
 WHERE rule LIKE '%unknown job type%' AND rule NOT LIKE '%alumet=raw%';
SQL
  [ "$(su postgres -c "psql -qAt -d oar -c \"select count(*) from admission_rules where rule like '%unknown job type%' and rule like '%alumet=raw%'\"")" = 1 ] \
    || { log "cannot add the job type alumet=raw to the admission rule that checks job types"; exit 1; }

  # 6. resources (one core resource per core, a gpudevice property as GPU sites have it)
  local props have; props=$(oarproperty -l)
  grep -qx host <<<"$props" || oarproperty -c -a host >/dev/null
  grep -qx cpu <<<"$props" || oarproperty -a cpu >/dev/null
  grep -qx core <<<"$props" || oarproperty -a core >/dev/null
  grep -qx gpudevice <<<"$props" || oarproperty -c -a gpudevice >/dev/null
  have=$(oarnodes -J 2>/dev/null | grep -c '"resource_id"' || true)
  local ncpu; ncpu=$(nproc)
  for c in $(seq "$have" $((CORES-1))); do
    oarnodesetting -a -h localhost -p host=localhost -p cpu=0 -p core=$c -p cpuset=$((c % ncpu)) -p gpudevice=$c >/dev/null
  done
  id "$JOBUSER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$JOBUSER"

  # 7. services
  alive /var/run/oar-node_sshd.pid || /etc/init.d/oar-node start >"$LAB/run/oar-node.log" 2>&1
  if [ "$(cat "$LAB/run/almighty.confsum" 2>/dev/null)" != "$(md5sum < "$CONF")" ] && alive /var/run/oar-server.pid; then
    kill_tree "$(cat /var/run/oar-server.pid)"; rm -f /var/run/oar-server.pid; log "Almighty restarted (oar.conf changed)"
  fi
  if ! alive /var/run/oar-server.pid; then
    /etc/init.d/oar-server start >"$LAB/run/oar-server.log" 2>&1
    md5sum < "$CONF" > "$LAB/run/almighty.confsum"
  fi

  # 8. readiness: a failed prologue leaves the node Suspected, a failed server script stops the queues
  local deadline=$(( $(date +%s) + 60 ))
  until ready; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "NOT READY: $(oarnodes -s | tr '\n' ' ')"; tail -20 /var/log/oar.log; exit 1; }
    grep -qE ': (Suspected|Absent)' <<<"$(oarnodes -s 2>/dev/null)" && oarnodesetting -s Alive -h localhost >/dev/null 2>&1 || true
    sleep 0.5
  done
  oarnotify -E >/dev/null 2>&1 || true
  log "READY (Almighty $(cat /var/run/oar-server.pid), node sshd $(cat /var/run/oar-node_sshd.pid), lab $LAB)"
}

stop() {
  if alive /var/run/oar-server.pid; then
    local jobs; jobs=$(oarstat -J 2>/dev/null | sed -n 's/^   "\([0-9]\+\)" : {/\1/p' | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
      oardel $jobs >/dev/null 2>&1 || true
      for _ in $(seq 1 60); do [ -z "$(oarstat -J 2>/dev/null | sed -n 's/^   "\([0-9]\+\)" : {/\1/p')" ] && break; sleep 0.5; done
    fi
    kill_tree "$(cat /var/run/oar-server.pid)"; log "Almighty stopped"
  fi
  rm -f /var/run/oar-server.pid
  if alive /var/run/oar-node_sshd.pid; then kill_tree "$(cat /var/run/oar-node_sshd.pid)"; log "node sshd stopped"; fi
  rm -f /var/run/oar-node_sshd.pid
  if alive "$LAB/run/powercap-ticker.pid"; then kill "$(cat "$LAB/run/powercap-ticker.pid")"; fi
  rm -f "$LAB/run/powercap-ticker.pid"
  for t in /sys/fs/cgroup/cpuset/oar/*_[0-9]*/tasks; do
    [ -f "$t" ] || continue; p=$(cat "$t"); [ -n "$p" ] && kill -KILL $p 2>/dev/null || true
  done
  sleep 0.3
  for d in /sys/fs/cgroup/*/oar/*_[0-9]*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
  [ -f "$LAB/run/oar.conf.orig" ] && cp -p "$LAB/run/oar.conf.orig" "$CONF" && rm -f "$LAB/run/oar.conf.orig" "$LAB/run/almighty.confsum"
  if [ -f "$LAB/run/pg_started_by_lab" ]; then
    pg_ctlcluster "$(pg_lsclusters -h | awk '$2=="main"{print $1; exit}')" main stop && rm -f "$LAB/run/pg_started_by_lab"
  fi
  log "stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) ready ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
