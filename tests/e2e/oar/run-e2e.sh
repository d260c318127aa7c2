#!/bin/bash
# run-e2e.sh -- end-to-end checks of alumet-hpc on a REAL OAR 2.5 (the lab of oar-lab.sh, already started).
# Scenarios, jobs submitted as the lab's ordinary user: a single job, two concurrent jobs, a job deleted
# with oardel while running, a job killed at its walltime. For each job and node:
#   - a DB row (scheduler 'oar', status 'complete'), its Parquet file (PAR1 magic), alumet-report --job N
#     naming the job; node energy = lab power x elapsed (generated RAPL tree, powercap-ticker.sh) and
#     job + other_jobs + unattributed = node;
#   - the sampler finalized after SIGTERM ('finalized' in its state dir, "SIGTERM" in the log), its
#     process is gone, it ran outside the job's cpuset/cpuacct cgroups;
# and overall: the node stays Alive, no alumet-hpc process is left.
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

check_job() {  # check_job ID LABEL
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
  awk -v n="$nodeE" -v j="$jobE" -v o="$otherE" -v u="$unattrE" -v e="$elapsed" -v w="$POWER_W" 'BEGIN {
      want = w * e; tol = 0.05 * want + 2; d = n - want; if (d < 0) d = -d
      s = j + o + u - n; if (s < 0) s = -s
      exit !(e > 0 && d <= tol && s <= 1e-6 * (n + 1)) }' \
    && ok "$what: node ${nodeE} J over ${elapsed} s at ${POWER_W} W; job ${jobE} + other ${otherE} + unattributed ${unattrE} = node" \
    || fail "$what: energies node=$nodeE job=$jobE other=$otherE unattributed=$unattrE elapsed=$elapsed (lab power $POWER_W W)"
  local rep; rep=$("$LAB/alumet-report" --config "$LAB/alumet.toml" --job "$j" 2>&1); local rc=$?
  if [ $rc -eq 0 ] && grep -qw "$j" <<<"$rep"; then ok "$what: alumet-report --job $j"; else fail "$what: alumet-report --job $j rc=$rc: $(head -c 400 <<<"$rep")"; fi
  # Sampler life: finalized on SIGTERM, gone, never inside the job's cgroups.
  [ -e "$sd/finalized" ] && ok "$what: sampler finalized" || fail "$what: no $sd/finalized"
  local pid; pid=$(awk '{print $1}' "$sd/sampler.pid" 2>/dev/null)
  if [ -n "$pid" ] && proc_alive "$pid"; then fail "$what: sampler $pid still alive after the job"; fi
  if grep -E "job $j\b|/$j\b" "$LAB/alumet-hpc.log" | grep -qi "sigterm"; then ok "$what: sampler log shows SIGTERM"
  else fail "$what: no SIGTERM line for job $j in $LAB/alumet-hpc.log"; fi
  if grep -E "job $j\b" "$LAB/alumet-hpc.log" | grep -qiE "sigkill|killed"; then fail "$what: sampler was killed, not stopped"; fi
}

node_alive() {
  if oarnodes -s | grep -qvE '^localhost$|: Alive$'; then fail "node not Alive: $(oarnodes -s | tr '\n' ' ')"; else ok "node Alive"; fi
}

# sampler cgroup check while a job runs: its pid must not be in the job's cpuset/cpuacct tasks
check_escape() {  # check_escape JOB
  local j=$1 sd=$LAB/state/oar/$1 end=$(( $(date +%s) + 10 )) pid=""
  while [ "$(date +%s)" -lt "$end" ]; do pid=$(awk '{print $1}' "$sd/sampler.pid" 2>/dev/null); [ -n "$pid" ] && break; sleep 0.2; done
  [ -n "$pid" ] || { fail "job $j: no sampler pid file in $sd while running"; return; }
  local cg; cg=$(grep -E ':(cpuset|cpuacct|cpu,cpuacct):' "/proc/$pid/cgroup" 2>/dev/null | tr '\n' ' ')
  if grep -q "oar/" <<<"$cg"; then fail "job $j: sampler $pid inside the job cgroups: $cg"; else ok "job $j: sampler $pid outside the job cgroups ($cg)"; fi
  local blk; blk=$(awk '/^SigBlk/{print $2}' "/proc/$pid/status" 2>/dev/null)
  [ "$blk" = 0000000000000000 ] && ok "job $j: sampler signal mask empty" || fail "job $j: sampler SigBlk=$blk (SIGTERM would be blocked)"
}

say "lab $LAB, user $JOBUSER, power $POWER_W W"
node_alive

# 1. single job
J1=$(submit "-l core=1,walltime=0:05:00 'sleep 6'")
[ -n "$J1" ] || { fail "oarsub failed"; exit 1; }
wait_state "$J1" 30 Running >/dev/null || fail "job $J1 did not start"
check_escape "$J1"
s=$(wait_state "$J1" 60 "Terminated|Error"); [ "$s" = Terminated ] && ok "job $J1 Terminated" || fail "job $J1 ended '$s'"
check_job "$J1" "single job"
node_alive

# 2. two concurrent jobs, one core each
J2=$(submit "-l core=1,walltime=0:05:00 'sleep 8'"); J3=$(submit "-l core=1,walltime=0:05:00 'sleep 8'")
wait_state "$J2" 30 Running >/dev/null && wait_state "$J3" 30 Running >/dev/null && ok "jobs $J2 and $J3 run concurrently" || fail "jobs $J2/$J3 not concurrent"
for j in $J2 $J3; do s=$(wait_state "$j" 60 "Terminated|Error"); [ "$s" = Terminated ] || fail "job $j ended '$s'"; done
check_job "$J2" "concurrent job A"; check_job "$J3" "concurrent job B"
# each saw the other: a non-zero other_jobs share on both
for j in $J2 $J3; do
  o=$(sql "select other_jobs_energy_j > 0 from jobs where scheduler='oar' and job_id='$j'")
  [ "$o" = 1 ] && ok "job $j: other_jobs energy > 0 while the other job ran" || fail "job $j: other_jobs energy is 0 although another job ran"
done
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

# no sampler left at all
sleep 1
left=$(pgrep -x alumet-hpc | tr '\n' ' ')
[ -z "$left" ] && ok "no alumet-hpc process left" || fail "alumet-hpc processes left: $left ($(ps -o pid=,args= -p ${left// /,} 2>/dev/null | tr '\n' ';'))"
# one sampler per job and node: never a second start
for j in $J1 $J2 $J3 $J4 $J5; do
  n=$(grep -cE "oar (prologue|resource-manager init) job $j: node" "$LAB/alumet-hpc.log")
  [ "$n" = 1 ] && ok "job $j: started once" || fail "job $j: $n sampler starts logged"
done

say "done in $(( $(date +%s) - T0 )) s: $FAILS failure(s)"
[ "$FAILS" -eq 0 ]
