#!/bin/bash
# run-e2e.sh -- end-to-end checks of alumet-hpc on a REAL OAR 2.5 (the lab of oar-lab.sh, already started).
# Scenarios, jobs submitted as the lab's ordinary user: a single job, a job asking for raw storage with the type
# alumet=raw (then the same under [sampler] job_raw = "deny"), two concurrent jobs, eight concurrent jobs on one
# node-sampler process, a job deleted with oardel while running, a job killed at its walltime. At the end,
# alumet-hpc parquet check on every job file and the node file: per-interval conservation. For each job and node:
#   - a DB row (scheduler 'oar', status 'complete'), its Parquet file (PAR1 magic), alumet-report --job N
#     naming the job; alone on the node: node energy = lab power x elapsed (generated RAPL tree,
#     powercap-ticker.sh) and job + other_jobs + unattributed = node; sharing it: the job's own share only;
#   - the node sampler finalized the job when its hook ended it ('finalized' in its state dir, a "stopped" line),
#     and runs outside the job's cpuset/cpuacct cgroups with an empty signal mask;
# and overall: ONE node sampler for concurrent jobs, the node stays Alive, no alumet-hpc process is left after the
# last job (linger_s = 1 in the lab), one registration per job.
# The first five jobs use the alumet resource-manager hook (lab default); the last switches oar.conf to the stock resource
# manager for one job, so that the prologue starts the sampler (TERM blocked there) and the epilogue stops it.
# Exit 0 = all passed. A lab that is down is a FAILURE, not a skip.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
LAB=${ALUMET_OAR_LAB:-/var/lib/alumet-oar-lab}
JOBUSER=${ALUMET_OAR_USER:-alumetoar}
POWER_W=${ALUMET_OAR_POWER_W:-40}
DB=$LAB/accounting.db
FAILS=0
T0=$(date +%s)
say() { printf '[oar-e2e %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
fail() { say "FAIL: $*"; FAILS=$((FAILS + 1)); }
ok() { say "ok: $*"; }

if ! "$HERE/oar-lab.sh" status; then
  say "FAIL: the OAR lab is not running (sudo tests/e2e/oar/oar-lab.sh start)"; exit 1
fi
# The binary under test: $ALUMET_HPC_BIN (make test exports it) replaces the lab's copy, so that a lab started
# before the last publish still runs the new build.
if [ -n "${ALUMET_HPC_BIN:-}" ]; then
  [ -x "$ALUMET_HPC_BIN" ] || { say "FAIL: ALUMET_HPC_BIN=$ALUMET_HPC_BIN is not executable"; exit 1; }
  install -m 755 "$ALUMET_HPC_BIN" "$LAB/alumet-hpc.new" && mv -f "$LAB/alumet-hpc.new" "$LAB/alumet-hpc"
  [ -f "$(dirname "$ALUMET_HPC_BIN")/libe_sqlite3.so" ] && install -m 644 "$(dirname "$ALUMET_HPC_BIN")/libe_sqlite3.so" "$LAB/"
  [ -f "$(dirname "$ALUMET_HPC_BIN")/alumet-hpc-sampler" ] && install -m 755 "$(dirname "$ALUMET_HPC_BIN")/alumet-hpc-sampler" "$LAB/alumet-hpc-sampler.new" && mv -f "$LAB/alumet-hpc-sampler.new" "$LAB/alumet-hpc-sampler"
fi
[ -x "$LAB/alumet-hpc" ] || { say "FAIL: $LAB/alumet-hpc missing"; exit 1; }

submit() {  # submit OARSUB_ARGS... -> prints job id
  su - "$JOBUSER" -c "cd ~ && oarsub $*" 2>&1 | sed -n 's/^OAR_JOB_ID=//p'
}
state() { oarstat -s -j "$1" 2>/dev/null | awk -F': ' '{print $2}'; }
wait_state() {  # wait_state JOB TIMEOUT_S STATE_REGEX
  local end=$(( $(date +%s) + $2 )) s
  while [ "$(date +%s)" -lt "$end" ]; do s=$(state "$1"); [[ $s =~ ^($3)$ ]] && { echo "$s"; return 0; }; sleep 0.3; done
  echo "$(state "$1")"; return 1
}
sql() { sqlite3 -batch -noheader "$DB" "$1" 2>/dev/null; }
proc_alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit !($3=="Z")}' "/proc/$1/stat"; }  # zombies count as dead

wait_row() {  # the row appears when the sampler has finalized (after the hook returns)
  local end=$(( $(date +%s) + 30 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    [ -n "$(sql "select 1 from jobs where scheduler='oar' and job_id='$1'")" ] && return 0; sleep 0.3
  done
  return 1
}

check_job() {  # check_job ID LABEL [shared]
  local j=$1 what="$2 (job $1)" sd=$LAB/state/oar/$1
  if ! wait_row "$j"; then fail "$what: no DB row with scheduler 'oar' within 30 s of the job's end"; return; fi
  local row; row=$(sql "select status, reason, node, user, parquet_path, node_energy_j, energy_package_j, other_jobs_energy_j, unattributed_energy_j, elapsed_s, cluster from jobs where scheduler='oar' and job_id='$j'")
  IFS='|' read -r status reason node user pq nodeE jobE otherE unattrE elapsed cluster <<<"$row"
  [ "$(sql "select count(*) from jobs where scheduler='oar' and job_id='$j'")" = 1 ] || fail "$what: expected exactly one row (one node)"
  [ "$status" = complete ] && ok "$what: DB row complete (node $node, user $user, cluster $cluster)" || fail "$what: status '$status' reason '$reason'"
  [ "$user" = "$JOBUSER" ] || fail "$what: DB user '$user', expected $JOBUSER"
  if [ -f "$pq" ] && [ "$(head -c4 "$pq")" = PAR1 ] && [ "$(tail -c4 "$pq")" = PAR1 ]; then ok "$what: parquet $pq"
  else fail "$what: parquet '$pq' missing or not a Parquet file"; fi
  # Energy: the generated zone runs at POWER_W, so node = POWER_W x elapsed (5 % + 2 J for the 20 ms ticker and
  # the first/last read); the job's share plus the other consumers is the node, to rounding.
  if [ "${3:-alone}" = shared ]; then
    # Another job shared the node: the user's file and row hold the job's own share, and the node-level series only
    # for the periods it was alone on the node (registered before the other, or after it ended): never the whole run.
    awk -v n="$nodeE" -v j="$jobE" -v e="$elapsed" -v w="$POWER_W" 'BEGIN { exit !(j > 0 && n < 0.8 * w * e) }' \
      && ok "$what: shared node: job ${jobE} J; node-level series only while alone (${nodeE} J of ${POWER_W} W x ${elapsed} s)" \
      || fail "$what: shared node: node=$nodeE (want < 80 % of $POWER_W W x $elapsed s) job=$jobE (want > 0)"
  else
  awk -v n="$nodeE" -v j="$jobE" -v o="$otherE" -v u="$unattrE" -v e="$elapsed" -v w="$POWER_W" 'BEGIN {
      want = w * e; tol = 0.05 * want + 2; d = n - want; if (d < 0) d = -d
      s = j + o + u - n; if (s < 0) s = -s
      exit !(e > 0 && d <= tol && s <= 1e-6 * (n + 1)) }' \
    && ok "$what: node ${nodeE} J over ${elapsed} s at ${POWER_W} W; job ${jobE} + other ${otherE} + unattributed ${unattrE} = node" \
    || fail "$what: energies node=$nodeE job=$jobE other=$otherE unattributed=$unattrE elapsed=$elapsed (lab power $POWER_W W)"
  fi
  # The report (as root = admin): one job line with the DB's numbers, and the OAR scheduler in --json.
  local rep rc total; total=$(sql "select total_energy_j from jobs where scheduler='oar' and job_id='$j'")
  rep=$("$LAB/alumet-report" --config "$LAB/alumet.toml" --job "$j" -P -n --noconvert -o JobID,Cluster,User,NodeList,TotalEnergy,Status 2>/dev/null); rc=$?
  if [ $rc -eq 0 ] && awk -F'|' -v j="$j" -v c="$cluster" -v u="$JOBUSER" -v n="$node" -v t="$total" \
       'NR==1 && $1==j && $2==c && $3==u && $4==n && ($5-t)^2 < 1e-12 && $6=="complete" {ok=1} END {exit !(ok && NR==1)}' <<<"$rep" \
     && "$LAB/alumet-report" --config "$LAB/alumet.toml" --job "$j" --json 2>/dev/null | grep -q '"scheduler": "oar"'; then
    ok "$what: alumet-report --job $j: $rep"
  else fail "$what: alumet-report --job $j rc=$rc: '$(head -3 <<<"$rep" | tr '\n' ' ')' (want $j|$cluster|$JOBUSER|$node|$total|complete, scheduler oar)"; fi
  # The node sampler finalized the job when its epilogue / clean hook ended it ("stopped" line), in time.
  # finalization removes the state dir and leaves the marker <job>.finalized beside it (JobFinalizer.MarkerSuffix)
  if [ -e "$sd/finalized" ] || [ -e "$sd.finalized" ]; then ok "$what: sampler finalized"; else fail "$what: no $sd.finalized (nor $sd/finalized)"; fi
  if grep -qE "oar (epilogue|resource-manager clean) job $j: node [^:]+: stopped: " "$LAB/alumet-hpc.log"; then ok "$what: ended -> the node sampler finalized it"
  else fail "$what: no 'stopped' line for job $j in $LAB/alumet-hpc.log: $(grep -E "job $j:" "$LAB/alumet-hpc.log" | tail -3 | tr '\n' ' ')"; fi
}

node_alive() {
  if oarnodes -s | grep -qvE '^localhost$|: Alive$'; then fail "node not Alive: $(oarnodes -s | tr '\n' ' ')"; else ok "node Alive"; fi
}

# sampler cgroup check while a job runs: its pid must not be in the job's cpuset/cpuacct tasks
check_escape() {  # check_escape JOB
  local j=$1 sd=$LAB/state/oar/$1 end=$(( $(date +%s) + 10 )) pid=""
  while [ "$(date +%s)" -lt "$end" ]; do [ -e "$sd/registration" ] && pid=$(awk '{print $1}' "$LAB/state/node/sampler.pid" 2>/dev/null); [ -n "$pid" ] && break; sleep 0.2; done
  [ -n "$pid" ] || { fail "job $j: no node sampler pid file in $LAB/state/node while running"; return; }
  echo "$pid" >"$LAB/sampler-of-$j"
  local cg; cg=$(grep -E ':(cpuset|cpuacct|cpu,cpuacct):' "/proc/$pid/cgroup" 2>/dev/null | tr '\n' ' ')
  if grep -q "oar/" <<<"$cg"; then fail "job $j: sampler $pid inside the job cgroups: $cg"; else ok "job $j: sampler $pid outside the job cgroups ($cg)"; fi
  local blk; blk=$(awk '/^SigBlk/{print $2}' "/proc/$pid/status" 2>/dev/null)
  [ "$blk" = 0000000000000000 ] && ok "job $j: sampler signal mask empty" || fail "job $j: sampler SigBlk=$blk (SIGTERM would be blocked)"
}

say "lab $LAB, user $JOBUSER, power $POWER_W W"
node_alive

# 1. single job, named (oarsub -n): the resource-manager wrapper passes the job hash's job_name to the row
J1=$(submit "-n alumet_e2e_name -l core=1,walltime=0:05:00 'sleep 6'")
[ -n "$J1" ] || { fail "oarsub failed"; exit 1; }
wait_state "$J1" 30 Running >/dev/null || fail "job $J1 did not start"
check_escape "$J1"
s=$(wait_state "$J1" 60 "Terminated|Error"); [ "$s" = Terminated ] && ok "job $J1 Terminated" || fail "job $J1 ended '$s'"
check_job "$J1" "single job"
n=$(sql "select job_name from jobs where scheduler='oar' and job_id='$J1'")
[ "$n" = alumet_e2e_name ] && ok "job $J1: job name recorded" || fail "job $J1: job_name '$n', expected alumet_e2e_name"
p=$(sql "select storage_period_ms from jobs where scheduler='oar' and job_id='$J1'")
[ "$p" = 1000 ] && ok "job $J1: storage_period_ms 1000 (no raw request)" || fail "job $J1: storage_period_ms '$p', expected the lab's 1000"
node_alive

# 1b. raw storage on request: the job type alumet=raw (the lab adds it to OAR's admission rule for job types) reaches
#     the resource manager in bipbip's job hash; the row says storage_period_ms 0 and the job's file holds every read
#     (RAPL at the lab's rapl_hz = 100 over 500 ms periods: ~50 node rows per period). Then [sampler] job_raw = "deny"
#     (read by the next sampler: the lab's linger_s = 1) ignores the same request, and the log says why.
no_sampler() { for _ in $(seq 1 30); do [ -z "$(pgrep -f "alumet-hpc(-sampler)? node-sampler .*$LAB/alumet.toml")" ] && return 0; sleep 0.5; done; return 1; }
raw_job() {  # raw_job LABEL -> sets RJ
  RJ=$(submit "-t alumet=raw -l core=1,walltime=0:05:00 'sleep 4'")
  [ -n "$RJ" ] || { fail "$1: oarsub -t alumet=raw refused (admission rule?)"; return 1; }
  s=$(wait_state "$RJ" 60 "Terminated|Error"); [ "$s" = Terminated ] && ok "$1 job $RJ Terminated" || fail "$1 job $RJ ended '$s'"
  check_job "$RJ" "$1 job"
}
no_sampler || fail "a node sampler still runs before the raw job"
if raw_job "raw-request"; then
  JRAW=$RJ
  p=$(sql "select storage_period_ms from jobs where scheduler='oar' and job_id='$JRAW'")
  [ "$p" = 0 ] && ok "job $JRAW: storage_period_ms 0 (every read stored)" || fail "job $JRAW: storage_period_ms '$p', expected 0"
  grep -qE "oar resource-manager init job $JRAW: node [^:]+: job $JRAW registered \(1 job\(s\) on the node, raw storage\)" "$LAB/alumet-hpc.log" \
    && ok "job $JRAW: registered with raw storage" || fail "job $JRAW: no 'raw storage' registration line"
  out=$("$LAB/alumet-hpc" parquet check "$(sql "select parquet_path from jobs where scheduler='oar' and job_id='$JRAW'")" 2>&1)
  if [[ $(head -1 <<<"$out") =~ ^ok:\ .*:\ ([0-9]+)\ interval\(s\)\ over\ 1\ domain\(s\)\ conserve,\ ([0-9]+)\ node\ row\(s\) ]] && [ "${BASH_REMATCH[2]}" -ge $(( 20 * BASH_REMATCH[1] )) ]; then
    ok "job $JRAW: raw file: ${BASH_REMATCH[2]} node reads over ${BASH_REMATCH[1]} periods, every period conserves"
  else fail "job $JRAW: raw file check: $out"; fi
fi
TOML_ORIG=$(cat "$LAB/alumet.toml")
trap 'printf "%s\n" "$TOML_ORIG" > "$LAB/alumet.toml"' EXIT
sed -i 's/^\[sampler\]$/[sampler]\njob_raw = "deny"/' "$LAB/alumet.toml"
no_sampler || fail "a node sampler still runs before the denied raw job"
if raw_job "raw-denied"; then
  JDENY=$RJ
  p=$(sql "select storage_period_ms from jobs where scheduler='oar' and job_id='$JDENY'")
  [ "$p" = 1000 ] && ok "job $JDENY: job_raw = deny: storage_period_ms 1000" || fail "job $JDENY: storage_period_ms '$p' under job_raw = deny, expected 1000"
  grep -qF "job $JDENY registered (1 job(s) on the node, its raw-storage request ignored ([sampler] job_raw = \"deny\"))" "$LAB/alumet-hpc.log" \
    && ok "job $JDENY: the log says the request was ignored" || fail "job $JDENY: no 'raw-storage request ignored' line"
fi
printf '%s\n' "$TOML_ORIG" > "$LAB/alumet.toml"
no_sampler || fail "a node sampler still runs after the denied raw job"
node_alive

# The jobs of sections 2 and 2b: each waits at a barrier (a directory both can write) until WANT jobs are in (at most
# 30 s), then works. OAR may start a job seconds after the one submitted with it, even after that one ended (seen in
# CI 2026-12-03: job 53 started 0.1 s after job 52's epilogue, 11 s after its submission), and "concurrent" must mean
# concurrent. In the lab directory, not /tmp: OAR purges a user's /tmp files when each job ends.
cat > "$LAB/barrier-job.sh" <<'JOB'
#!/bin/sh
d=$1 mode=$2 want=${3:-8}
touch "$d/$$"
# Counted with a glob, one sleep per check: waiting costs an idle job next to no CPU time.
n=0; while :; do set -- "$d"/*; { [ $# -ge "$want" ] || [ $n -ge 60 ]; } && break; sleep 0.5; n=$((n + 1)); done
# A busy job does a fixed amount of work (~5 s of CPU here), not 5 s of wall time: on a loaded machine (CI beside
# builds, load 12) a 5 s loop got so little CPU that its share was hardly more than an idle job's, whose CPU time is
# OAR's start-up of the job (busy min 27 J against idle max 17 J): the ratio measured the load, not the attribution.
if [ "$mode" = busy ]; then awk 'BEGIN { for (i = 0; i < 300000000; i++) s += i }'; sleep 2; else sleep 7; fi
JOB
chmod 755 "$LAB/barrier-job.sh"

# 2. two concurrent jobs, one core each, ONE node sampler for both. Each burns CPU once both run.
BAR2=$LAB/bar2; rm -rf "$BAR2"; mkdir -m 755 "$BAR2"; mkdir -m 1777 "$BAR2/in"
J2=$(submit "-l core=1,walltime=0:05:00 '$LAB/barrier-job.sh $BAR2/in busy 2'"); J3=$(submit "-l core=1,walltime=0:05:00 '$LAB/barrier-job.sh $BAR2/in busy 2'")
wait_state "$J2" 30 Running >/dev/null && wait_state "$J3" 30 Running >/dev/null && ok "jobs $J2 and $J3 run concurrently" || fail "jobs $J2/$J3 not concurrent"
check_escape "$J2"; check_escape "$J3"
[ "$(cat "$LAB/sampler-of-$J2")" = "$(cat "$LAB/sampler-of-$J3")" ] && ok "jobs $J2 and $J3: one node sampler ($(cat "$LAB/sampler-of-$J2"))" \
  || fail "jobs $J2 and $J3: two samplers ($(cat "$LAB/sampler-of-$J2") and $(cat "$LAB/sampler-of-$J3"))"
n=$(pgrep -fc "alumet-hpc(-sampler)? node-sampler .*$LAB/alumet.toml" || true)
[ "$n" = 1 ] && ok "one node-sampler process while both run" || fail "$n node-sampler processes while both run"
for j in $J2 $J3; do s=$(wait_state "$j" 60 "Terminated|Error"); [ "$s" = Terminated ] || fail "job $j ended '$s'"; done
check_job "$J2" "concurrent job A" shared; check_job "$J3" "concurrent job B" shared
[ "$(ls "$BAR2/in" | wc -l)" = 2 ] && ok "2 jobs: both passed the barrier" || fail "2 jobs: only $(ls "$BAR2/in" | wc -l) of 2 reached the barrier"
rm -rf "$BAR2"
node_alive

# 2b. eight concurrent jobs (4 busy, 4 idle; the lab declares 8 core resources on the machine's CPUs) on ONE node
#     sampler process; the busy jobs' shares dwarf the idle ones'; every interval conserves (parquet check at the end).
#     Each job works only once all 8 run (a barrier, at most 30 s): OAR may start the last one seconds after the first
#     (seen in CI: a late job was then alone on the node for 80 % of its run), and "shared" must mean shared.
#     In the lab directory, not /tmp: OAR purges a user's /tmp files when each job ends.
BAR8=$LAB/bar8; rm -rf "$BAR8"; mkdir -m 755 "$BAR8"; mkdir -m 1777 "$BAR8/in"
J8=(); for i in 1 2 3 4; do J8+=("$(submit "-l core=1,walltime=0:05:00 '$LAB/barrier-job.sh $BAR8/in busy'")"); done
for i in 1 2 3 4; do J8+=("$(submit "-l core=1,walltime=0:05:00 '$LAB/barrier-job.sh $BAR8/in idle'")"); done
running=0; for j in "${J8[@]}"; do [ -n "$j" ] && wait_state "$j" 30 Running >/dev/null && running=$((running + 1)); done
[ "$running" = 8 ] && ok "8 jobs (${J8[*]}) run concurrently" || fail "only $running of 8 jobs (${J8[*]}) ran at once"
pids=""; for _ in $(seq 1 10); do pids="$pids $(pgrep -f "alumet-hpc(-sampler)? node-sampler .*$LAB/alumet.toml" | tr '\n' ' ')"; sleep 0.3; done
pids=$(tr ' ' '\n' <<<"$pids" | sed '/^$/d' | sort -u | tr '\n' ' ')
[ "$(wc -w <<<"$pids")" = 1 ] && ok "8 concurrent jobs: one node-sampler process ($pids)" || fail "8 concurrent jobs: node-sampler processes '$pids'"
# Up to their walltime's 5 min for the first, then 60 s each: 4 busy jobs' fixed work on 2 CPUs beside a loaded CI
# (load 20) took ~100 s, and OAR's own ending of a job (Finishing) ~30 s more (2026-12-02 09:36: job 150 'Finishing' at 60 s).
w=300; for j in "${J8[@]}"; do s=$(wait_state "$j" $w "Terminated|Error"); [ "$s" = Terminated ] || fail "job $j ended '$s'"; w=60; done
for j in "${J8[@]}"; do check_job "$j" "one of 8 jobs" shared; done
[ "$(ls "$BAR8/in" | wc -l)" = 8 ] && ok "8 jobs: all 8 passed the barrier" || fail "8 jobs: only $(ls "$BAR8/in" | wc -l) of 8 reached the barrier"
rm -rf "$BAR8"
busy_min=$(for j in "${J8[@]:0:4}"; do sql "select energy_package_j from jobs where scheduler='oar' and job_id='$j'"; done | sort -g | head -1)
idle_max=$(for j in "${J8[@]:4:4}"; do sql "select energy_package_j from jobs where scheduler='oar' and job_id='$j'"; done | sort -g | tail -1)
awk -v b="$busy_min" -v i="$idle_max" 'BEGIN { exit !(b > 3 * i && b > 0) }' \
  && ok "8 jobs: busy shares (min ${busy_min} J) > 3 x idle ones (max ${idle_max} J)" || fail "8 jobs: busy min ${busy_min} J vs idle max ${idle_max} J"
node_alive

# 3. oardel while running
J4=$(submit "-l core=1,walltime=0:05:00 'sleep 120'")
wait_state "$J4" 30 Running >/dev/null || fail "job $J4 did not start"
sleep 3; oardel "$J4" >/dev/null 2>&1 || fail "oardel $J4"
s=$(wait_state "$J4" 60 "Terminated|Error"); [ -n "$s" ] && ok "job $J4 deleted -> $s" || fail "job $J4 did not end after oardel"
check_job "$J4" "oardel job"
node_alive

# 4. walltime overrun (OAR kills the job at its walltime)
J5=$(submit "-l core=1,walltime=0:00:06 'sleep 120'")
wait_state "$J5" 30 Running >/dev/null || fail "job $J5 did not start"
s=$(wait_state "$J5" 90 "Terminated|Error"); [ -n "$s" ] && ok "job $J5 killed at walltime -> $s" || fail "job $J5 still running past walltime"
check_job "$J5" "walltime job"
node_alive

# 5. prologue mode: the stock resource manager (no alumet hook), the sampler started by the prologue (which runs
#    with TERM blocked: the sampler must unblock it) inside the job cpuset, stopped by the epilogue
CONF=/etc/oar/oar.conf
RM_LINE=$(grep '^JOB_RESOURCE_MANAGER_FILE=' "$CONF")
trap 'sed -i "s|^JOB_RESOURCE_MANAGER_FILE=.*|$RM_LINE|" "$CONF"; printf "%s\n" "$TOML_ORIG" > "$LAB/alumet.toml"' EXIT
sed -i 's|^JOB_RESOURCE_MANAGER_FILE=.*|JOB_RESOURCE_MANAGER_FILE="/etc/oar/job_resource_manager_cgroups.pl"|' "$CONF"   # bipbip reads it per job
J6=$(submit "-l core=1,walltime=0:05:00 'sleep 6'")
wait_state "$J6" 30 Running >/dev/null || fail "job $J6 did not start"
check_escape "$J6"
s=$(wait_state "$J6" 60 "Terminated|Error"); [ "$s" = Terminated ] && ok "job $J6 Terminated (prologue mode)" || fail "job $J6 ended '$s'"
sed -i "s|^JOB_RESOURCE_MANAGER_FILE=.*|$RM_LINE|" "$CONF"
check_job "$J6" "prologue-mode job"
grep -qE "oar prologue job $J6: node " "$LAB/alumet-hpc.log" && ok "job $J6: started by the prologue" || fail "job $J6: the prologue did not start it"
grep -qE "oar epilogue job $J6: node [^:]+: stopped: " "$LAB/alumet-hpc.log" && ok "job $J6: stopped by the epilogue" || fail "job $J6: the epilogue did not stop it"
node_alive

# no sampler left: any process running the lab's binary or sampling an OAR job (the machine may run other
# alumet-hpc processes, e.g. the Slurm lab's)
ours() {
  local p
  for p in $(pgrep -x alumet-hpc; pgrep -x alumet-hpc-samp); do   # comm is cut at 15 characters
    if [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$LAB/alumet-hpc" ] || [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$LAB/alumet-hpc-sampler" ] || tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "node-sampler .*$LAB/alumet.toml"; then
      proc_alive "$p" && echo "$p"
    fi
  done
}
# (the last clean hook may still be exiting: give it a few seconds)
for _ in $(seq 1 20); do left=$(ours | tr '\n' ' '); [ -z "${left// }" ] && break; sleep 0.5; done
if [ -z "${left// }" ]; then ok "no alumet-hpc process of the lab left"
else fail "alumet-hpc processes left: $(for p in $left; do echo "$p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; done | tr '\n' ';')"; fi
# Per-interval conservation (alumet-hpc parquet check, exact on the stored integers): every job file of this run
# (a job alone has the node's split in its file; a shared one its own share only: "unchecked") and the node's
# root-only file of the day, which holds the split of every period between all the node's jobs.
ALLJ="$J1 ${JRAW:-} ${JDENY:-} $J2 $J3 ${J8[*]} $J4 $J5 $J6"
files=(); for j in $ALLJ; do f=$(sql "select parquet_path from jobs where scheduler='oar' and job_id='$j'"); [ -n "$f" ] && files+=("$f"); done
nodefile=$(ls -t "$LAB"/data/*/node/*/*."$(date -u +%F)".parquet 2>/dev/null | head -1)
[ -n "$nodefile" ] || fail "no node file of today under $LAB/data/*/node/"
out=$("$LAB/alumet-hpc" parquet check "${files[@]}" ${nodefile:+"$nodefile"} 2>&1); rc=$?
nok=$(grep -c '^ok: ' <<<"$out"); nun=$(grep -c '^unchecked: ' <<<"$out")
if [ $rc = 0 ] && [ $(( nok + nun )) = $(( ${#files[@]} + 1 )) ] && grep -q "^ok: $nodefile: " <<<"$out" && grep -q "^ok: $(sql "select parquet_path from jobs where scheduler='oar' and job_id='$J1'"): " <<<"$out"; then
  ok "parquet check: ${#files[@]} job files and the node file: every interval conserves ($nok checked, $nun share-only): $(grep "^ok: $nodefile" <<<"$out")"
else fail "parquet check rc=$rc: $(tr '\n' ' ' <<<"$out")"; fi

# one sampler per job and node: never a second start
for j in $ALLJ; do
  n=$(grep -cE "oar (prologue|resource-manager init) job $j: node" "$LAB/alumet-hpc.log")
  [ "$n" = 1 ] && ok "job $j: started once" || fail "job $j: $n sampler starts logged"
done

say "done in $(( $(date +%s) - T0 )) s: $FAILS failure(s)"
[ "$FAILS" -eq 0 ]
