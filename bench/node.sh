#!/usr/bin/env bash
# The node sampler's figures (issue 8): `alumet-hpc node-sampler` started and fed by the real Slurm prolog and
# ended by the real epilog (the bare binary with slurmd's environment), against bench/c_reader.c doing the same
# reads in the same run:
#   CPU per tick      with 1, 4 and 16 registered jobs: at 1 kHz (raw storage: every counter read each tick, /proc/stat
#                     and every job's cgroup once per second) and at the defaults (1 s storage: no tick thread, one
#                     snapshot a second, so "per tick" = per snapshot); the node sampler's threads (/proc/PID/task/*/
#                     schedstat) over a window, / ticks in it (target rate minus the missed ticks `ctl status` counts)
#   RSS               with 16 jobs: VmHWM at the end of the window (sampling) and after the 16 epilogs (Parquet files
#                     and rows written by the sampler)
#   OS noise          a CPU-bound job on every core (bench/noise.c: fixed work units in a fixed time), with and without
#                     the sampler (stopped by SIGSTOP: same process, same registered jobs, no wake-up), alternated,
#                     median over BENCH_NOISE_PAIRS pairs of the slowdown 1 - units(with) / units(without); 1 and 8 jobs,
#                     defaults and 1 kHz, the C reader at 1 kHz beside
#   first sample      prolog spawn (of the prolog that starts the node sampler) to its first stored sample (`ctl status`
#                     first_sample_ms): the first snapshot at the defaults, the first tick at 1 kHz
# Generated inputs: the powercap tree of lib.sh (2 packages x 3 domains, advanced at 1 kHz) and a cgroup v2 tree with
# Slurm's layout (system.slice/slurmstepd.scope/job_<id>/cpu.stat) for 16 busy jobs (bench/advance.c moves each job's
# usage_usec by BENCH_JOB_CPUS, 0.1 CPU, at 100 Hz, like a running job's); /proc/stat is the machine's.
# Called by bench/run.sh (`make bench`); alone: bash bench/node.sh [out/bin/alumet-hpc]. Needs root (the node sampler's
# socket answers root only). Knobs: BENCH_SECONDS (10: CPU window), BENCH_WARMUP (1), BENCH_HZ (1000), BENCH_ROUNDS (1:
# pairs of (ours, C) CPU windows per job count, medians), BENCH_CONCURRENT (0; 1: C in the same seconds as ours),
# BENCH_JOB_CPUS (0.1: each job cgroup's CPU use),
# BENCH_NOISE_SECONDS (1: one noise run), BENCH_NOISE_PAIRS (10), BENCH_TICK (fifo|normal), BENCH_KEEP=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init node "$@"
NOISE_S=${BENCH_NOISE_SECONDS:-1}
PAIRS=${BENCH_NOISE_PAIRS:-10}
[[ $(id -u) == 0 ]] || { echo "node: not run (the node sampler's socket answers root only; run as root)"; exit 0; }
"$BIN" --help 2>/dev/null | grep -qE "^[[:space:]]+node-sampler[[:space:]]" || { echo "node: not run ($BIN has no node-sampler command)"; exit 0; }
bench_build c_reader advance probe noise

TREE=$WORK/powercap
powercap_tree "$TREE"
CG=$WORK/cgroup
mkdir -p "$CG/system.slice/slurmstepd.scope"
echo "cpuset cpu io memory pids" > "$CG/cgroup.controllers"
JOBS=() CG_ADVANCE=()
for ((j = 1; j <= 16; j++)); do
    id=$((5000 + j)); JOBS+=("$id")
    mkdir -p "$CG/system.slice/slurmstepd.scope/job_$id"
    printf 'usage_usec %020d\nuser_usec %020d\nsystem_usec %020d\n' $((j * 1000)) $((j * 1000)) 0 > "$CG/system.slice/slurmstepd.scope/job_$id/cpu.stat"
    CG_ADVANCE+=("cpustat:$CG/system.slice/slurmstepd.scope/job_$id/cpu.stat:${BENCH_JOB_CPUS:-0.1}")
done
start_advancer 1000 "${PC_ADVANCE[@]}" "${CG_ADVANCE[@]}"
cgroup_items() { local j; for ((j = 0; j < $1; j++)); do printf 'cgroup:%s\n' "$CG/system.slice/slurmstepd.scope/job_${JOBS[j]}/cpu.stat"; done; }

# hook CONTEXT JOB DIR: the bare binary as slurmd runs a Prolog/Epilog (no argv, only the job's environment), under the
# probe; prints its wall time in ms.
hook() {
    "$OUT/probe" "$3/hook.txt" hook -- SLURM_SCRIPT_CONTEXT="$1_slurmd" SLURM_JOB_ID="$2" SLURM_JOBID="$2" SLURM_JOB_USER=root \
        SLURM_JOB_UID=0 SLURM_JOB_GID=0 SLURMD_NODENAME=bench SLURM_CLUSTER_NAME=bench ALUMET_HPC_CONFIG="$3/alumet.toml" "$BIN" \
        > /dev/null 2>&1 || die "$1 of job $2: probe failed"
    [[ $(kv "$3/hook.txt" exit_code) == 0 ]] || die "$1 of job $2 exited with $(kv "$3/hook.txt" exit_code) (hooks always exit 0)"
    calc "sprintf(\"%.1f\", $(kv "$3/hook.txt" wall_ns) / 1e6)"
}
PROLOG_FIRST=() PROLOG_NEXT=() EPILOG=()
ctl() { "$BIN" ctl --config "$D_DIR/alumet.toml" "$@"; }
status_value() { sed -n "s/^$2: \([0-9.]*\).*/\1/p" "$1" | head -n1; }

# daemon_up NAME STORAGE_MS NJOBS: a fresh state dir; NJOBS prologs (the first starts the node sampler, detached).
# Sets D_DIR, D_PID, D_N; dies unless the sampler answers with NJOBS jobs.
daemon_up() {
    D_DIR=$WORK/$1 D_N=$3
    mkdir -p "$D_DIR"
    sampler_toml "$D_DIR" "storage_period_ms = $2
linger_s = 2" 'rapl = "on"
rapl_interface = "powercap"
nvml = "off"' "cgroup_root = \"$CG\""
    local j
    local ms; ms=$(hook prolog "${JOBS[0]}" "$D_DIR"); PROLOG_FIRST+=("$ms")
    for ((j = 1; j < D_N; j++)); do ms=$(hook prolog "${JOBS[j]}" "$D_DIR"); PROLOG_NEXT+=("$ms"); done
    D_PID=
    read -r D_PID _ < "$D_DIR/state/node/sampler.pid" 2>/dev/null || true   # "pid starttime", no newline
    [[ -n $D_PID ]] || die "$1: no node sampler started (see $D_DIR/alumet-hpc.log)"
    BENCH_PIDS+=("$D_PID")
    local n; n=$(ctl jobs | grep -c " mode=cgroup") || true
    [[ $n == "$D_N" ]] || { ctl jobs >&2 || true; die "$1: the node sampler has $n jobs in cgroup mode, expected $D_N (see $D_DIR/alumet-hpc.log)"; }
}

# daemon_down: the epilogs (the sampler writes each job's Parquet file and row), VmHWM after them (D_HWM_END_KB), then
# the sampler must exit by itself linger_s after its last job.
daemon_down() {
    local j
    local ms
    for ((j = 0; j < D_N; j++)); do ms=$(hook epilog "${JOBS[j]}" "$D_DIR"); EPILOG+=("$ms"); done
    D_HWM_END_KB=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$D_PID/status" 2>/dev/null || echo -)
    local done_n; done_n=$(find "$D_DIR/data" -name '*.parquet' -path '*slurm*' | wc -l)
    [[ $done_n -ge $D_N ]] || say "$D_DIR: $done_n job Parquet files after $D_N epilogs (see $D_DIR/alumet-hpc.log)"
    for ((j = 0; j < 100 && $(kill -0 "$D_PID" 2>/dev/null && echo 1 || echo 0) == 1; j++)); do sleep 0.1; done
    if kill -0 "$D_PID" 2>/dev/null; then say "$D_DIR: node sampler $D_PID still running 10 s after its last epilog; stopped"; kill "$D_PID"; fi
}

# cpu_window NAME: the node sampler's CPU over a BENCH_SECONDS window after BENCH_WARMUP s; sets W_CPU_TICK (µs per tick at
# 1 kHz, per snapshot at the defaults), W_PCT, W_HWM_MB.
cpu_window() {
    sleep "$WARMUP"
    ctl status > "$D_DIR/status.before"
    "$OUT/probe" "$D_DIR/probe.txt" 0 "$SECS" pid "$D_PID" || die "$1: the node sampler died during the window"
    ctl status > "$D_DIR/status.after"
    local hz missed win cpu
    hz=$(status_value "$D_DIR/status.after" tick_target_hz)
    missed=$(( $(status_value "$D_DIR/status.after" missed_ticks) - $(status_value "$D_DIR/status.before" missed_ticks) ))
    win=$(kv "$D_DIR/probe.txt" window_ns); cpu=$(kv "$D_DIR/probe.txt" cpu_window_ns)
    if [[ $hz == 0 ]]; then
        local snaps=$(( $(status_value "$D_DIR/status.after" snapshots) - $(status_value "$D_DIR/status.before" snapshots) ))
        W_CPU_TICK=$(calc "sprintf(\"%.1f\", ($cpu / 1000) / $snaps)")
    else
        W_CPU_TICK=$(calc "sprintf(\"%.2f\", ($cpu / 1000) / ($hz * $win / 1e9 - $missed))")
    fi
    W_PCT=$(calc "sprintf(\"%.3f\", 100 * $cpu / $win)")
    W_HWM_MB=$(calc "sprintf(\"%.2f\", $(kv "$D_DIR/probe.txt" hwm_window_kb) / 1024)")
    W_FIRST=$(status_value "$D_DIR/status.after" first_sample_ms); W_FIRST=${W_FIRST:--}
}

# c_run NAME HZ PERIOD_TICKS NJOBS: the C reader under the probe, same reads (may run in the background).
c_run() {
    # shellcheck disable=SC2046
    HZ=$2 run_c "$WORK/$1" "${PC_FILES[@]}" --period "$3" procstat:/proc/stat $(cgroup_items "$4")
}

# c_window NAME HZ: the figures of a finished c_run; sets the same W_* figures as cpu_window.
c_window() {
    local dir=$WORK/$1
    W_CPU_TICK=$(HZ=$2 cpu_tick "$dir/probe.txt" "$dir/stats.txt" kv)
    W_PCT=$(calc "sprintf(\"%.3f\", 100 * $(kv "$dir/probe.txt" cpu_window_ns) / $(kv "$dir/probe.txt" window_ns))")
    W_HWM_MB=$(calc "sprintf(\"%.2f\", $(kv "$dir/probe.txt" hwm_window_kb) / 1024)")
}

# noise_pairs NAME PID: BENCH_NOISE_PAIRS alternated pairs of noise runs with PID running and SIGSTOPped; sets N_SLOW
# (median slowdown, %), N_DET (median extra detour time, % of the CPUs' time), N_ALL (every pair's slowdown).
noise_pairs() {
    local name=$1 pid=$2 i dir=$WORK/noise-$1 with without
    mkdir -p "$dir"
    local slows=() dets=()
    for ((i = 1; i <= PAIRS; i++)); do
        if ((i % 2)); then
            "$OUT/noise" "$NOISE_S" > "$dir/with$i.txt"
            kill -STOP "$pid"; "$OUT/noise" "$NOISE_S" > "$dir/without$i.txt"; kill -CONT "$pid"
        else
            kill -STOP "$pid"; "$OUT/noise" "$NOISE_S" > "$dir/without$i.txt"; kill -CONT "$pid"
            "$OUT/noise" "$NOISE_S" > "$dir/with$i.txt"
        fi
        with=$dir/with$i.txt without=$dir/without$i.txt
        slows+=("$(calc "sprintf(\"%.3f\", 100 * (1 - $(kv "$with" units) / $(kv "$without" units)))")")
        dets+=("$(calc "sprintf(\"%.3f\", 100 * ($(kv "$with" detour_ns) - $(kv "$without" detour_ns)) / ($(kv "$with" window_ns) * $(kv "$with" threads)))")")
    done
    N_SLOW=$(num "$(median "${slows[@]}")" %.2f); N_DET=$(num "$(median "${dets[@]}")" %.2f); N_ALL="${slows[*]}"
}

CONCURRENT=${BENCH_CONCURRENT:-0}
UPTIME_BEFORE=$(uptime)
say "$(nproc) CPUs; CPU windows of $SECS s after $WARMUP s, $ROUNDS round(s) of (ours, C)$([[ $CONCURRENT == 1 ]] && echo ' at the same time'); noise: $PAIRS pairs of $NOISE_S s per row"
declare -A CPU PCT HWM HWM_END SLOW DET ALL FIRST
ROUND_LINES=()
for mode in def 1k; do
    storage=$([[ $mode == def ]] && echo 1000 || echo 0)
    for n in 1 4 8 16; do
        say "ours, $mode, $n job(s)"
        daemon_up "ours-$mode-$n" "$storage" "$n"
        if [[ $n != 8 ]]; then
            # BENCH_ROUNDS pairs of (ours, C) windows under the same background load (at the same time with
            # BENCH_CONCURRENT=1); each figure is the median over the rounds.
            hz=$([[ $mode == def ]] && echo 1 || echo "$HZ")
            oc=() op=() oh=() cc=() cp=() ch=()
            for ((r = 1; r <= ROUNDS; r++)); do
                if [[ $CONCURRENT == 1 ]]; then
                    c_run "c-$mode-$n-$r" "$hz" "$hz" "$n" & cpid=$!
                    cpu_window "ours-$mode-$n"
                    wait "$cpid" || die "C reader failed (c-$mode-$n-$r)"
                else
                    cpu_window "ours-$mode-$n"
                    # C alone, as ours was: the node sampler is stopped meanwhile (SIGSTOP: same process, no wake-up).
                    kill -STOP "$D_PID"; c_run "c-$mode-$n-$r" "$hz" "$hz" "$n"; kill -CONT "$D_PID"
                fi
                ((r > 1)) || FIRST[ours-$mode-$n]=$W_FIRST
                oc+=("$W_CPU_TICK") op+=("$W_PCT") oh+=("$W_HWM_MB")
                c_window "c-$mode-$n-$r" "$hz"
                cc+=("$W_CPU_TICK") cp+=("$W_PCT") ch+=("$W_HWM_MB")
                ROUND_LINES+=("  $mode, $n job(s), round $r: ours ${oc[-1]} / C ${cc[-1]} µs per $([[ $mode == def ]] && echo snapshot || echo tick)")
            done
            CPU[ours-$mode-$n]=$(median "${oc[@]}") PCT[ours-$mode-$n]=$(median "${op[@]}") HWM[ours-$mode-$n]=$(median "${oh[@]}")
            CPU[c-$mode-$n]=$(median "${cc[@]}") PCT[c-$mode-$n]=$(median "${cp[@]}") HWM[c-$mode-$n]=$(median "${ch[@]}")
        fi
        if [[ $n == 1 || $n == 8 ]]; then
            noise_pairs "ours-$mode-$n" "$D_PID"
            SLOW[ours-$mode-$n]=$N_SLOW DET[ours-$mode-$n]=$N_DET ALL[ours-$mode-$n]=$N_ALL
        fi
        daemon_down
        HWM_END[ours-$mode-$n]=$(calc "sprintf(\"%.2f\", $D_HWM_END_KB / 1024)")
    done
done
for n in 1 8; do
    say "C reader at $HZ Hz, $n job cgroup(s): noise"
    # shellcheck disable=SC2046
    "$OUT/c_reader" "$WORK/c-noise-$n.txt" "$HZ" "${PC_FILES[@]}" --period "$HZ" procstat:/proc/stat $(cgroup_items "$n") &
    cpid=$!; BENCH_PIDS+=("$cpid")
    sleep 0.5
    noise_pairs "c-1k-$n" "$cpid"
    SLOW[c-1k-$n]=$N_SLOW DET[c-1k-$n]=$N_DET ALL[c-1k-$n]=$N_ALL
    kill "$cpid"; wait "$cpid" || true
done
stop_advancer

pf() { awk -v v="$1" -v l="$2" 'BEGIN { if (v == "" || v == "-") print "n/a"; else print (v + 0 <= l + 0) ? "PASS" : "MISS" }'; }
row() { printf '%-46s %10s %10s %8s  %-16s %s\n' "$@"; }
echo
ours=$BIN; [[ -x $(dirname "$BIN")/alumet-hpc-sampler ]] && ours=$(dirname "$BIN")/alumet-hpc-sampler   # what the prolog starts (SamplerLauncher)
echo "Node sampler (issue 8) — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs; ours = $ours node-sampler, started and fed by the Slurm prolog"
echo "uptime before: $UPTIME_BEFORE"
echo "uptime after:  $(uptime)"
echo "C = bench/c_reader.c: the 6 counters every tick, /proc/stat and the jobs' cpu.stat once per second (kept open), nothing stored"
row figure ours C ours/C target result
row ---------------------------------------------- ---------- ---------- -------- ---------------- ------
for n in 1 4 16; do
    o=${CPU[ours-1k-$n]} c=${CPU[c-1k-$n]}
    row "CPU per tick at $HZ Hz, $n job(s) (µs)" "$o" "$c" "$(ratio "$o" "$c")" "<= 1.2x C, flat" "$(pf "$(ratio "$o" "$c")" 1.2)"
done
for n in 1 4 16; do
    o=${CPU[ours-def-$n]} c=${CPU[c-def-$n]}
    row "CPU per snapshot at defaults, $n job(s) (µs)" "$o" "$c" "$(ratio "$o" "$c")" "" ""
done
for n in 1 4 16; do
    row "  CPU, % of one core: 1 kHz / defaults, $n job(s)" "${PCT[ours-1k-$n]}/${PCT[ours-def-$n]}" "${PCT[c-1k-$n]}/${PCT[c-def-$n]}" "" "" ""
done
o=${HWM[ours-def-16]} c=${HWM[c-def-16]}
row "peak RSS sampling, defaults, 16 jobs (MB)" "$o" "$c" "$(ratio "$o" "$c")" "<= 10" "$(pf "$o" 10)"
o=${HWM[ours-1k-16]} c=${HWM[c-1k-16]}
row "peak RSS sampling, 1 kHz raw, 16 jobs (MB)" "$o" "$c" "$(ratio "$o" "$c")" "<= 10" "$(pf "$o" 10)"
row "  after the 16 epilogs: defaults / 1 kHz (MB)" "${HWM_END[ours-def-16]}/${HWM_END[ours-1k-16]}" "" "" "" ""
share() { calc "sprintf(\"%.3f\", $1 / $(nproc))"; }
for n in 1 16; do
    row "CPU share of all CPUs, defaults, $n job(s) (%)" "$(share "${PCT[ours-def-$n]}")" "$(share "${PCT[c-def-$n]}")" \
        "$(ratio "${PCT[ours-def-$n]}" "${PCT[c-def-$n]}")" "<= 0.1" "$(pf "$(share "${PCT[ours-def-$n]}")" 0.1)"
done
for n in 1 8; do
    row "OS noise at defaults, $n job(s) (slowdown %)" "${SLOW[ours-def-$n]}" "" "" "<= 0.1" "$(pf "${SLOW[ours-def-$n]}" 0.1)"
done
for n in 1 8; do
    o=${SLOW[ours-1k-$n]} c=${SLOW[c-1k-$n]}
    # A ratio of slowdowns means something only when both are positive.
    row "OS noise at $HZ Hz, $n job(s) (slowdown %)" "$o" "$c" "$(awk -v o="$o" -v c="$c" 'BEGIN { if (o + 0 > 0 && c + 0 > 0) printf "%.2f", o / c; else print "-" }')" "<= C" "$(awk -v o="$o" -v c="$c" 'BEGIN { if (o == "-" || c == "-") print "n/a"; else print (o + 0 <= c + 0) ? "PASS" : "MISS" }')"
done
row "first sample after the starting prolog's spawn, 1 job: defaults / 1 kHz (ms)" "${FIRST[ours-def-1]}/${FIRST[ours-1k-1]}" "" "" "" ""
row "prolog that starts the node sampler (ms, median)" "$(median "${PROLOG_FIRST[@]}")" "" "" "" ""
row "prolog, node sampler running (ms, median)" "$(median "${PROLOG_NEXT[@]}")" "" "" "" ""
row "epilog: the job's Parquet + row (ms, median)" "$(median "${EPILOG[@]}")" "" "" "" ""
echo
if ((ROUNDS > 1)); then echo "rounds (the table shows medians):"; printf '%s\n' "${ROUND_LINES[@]}"; fi
echo "noise pairs (slowdown % per pair; extra detour time, % of the CPUs' time, median):"
for k in ours-def-1 ours-def-8 ours-1k-1 ours-1k-8 c-1k-1 c-1k-8; do
    printf '  %-11s %s | detour %s\n' "$k" "${ALL[$k]}" "${DET[$k]}"
done
echo "CPU per tick: the node sampler's threads, window CPU / (tick_target_hz x window - missed ticks); at the defaults there is"
echo "no tick thread (rate policy: the snapshots keep the counters' wraps unambiguous), so the figure is per snapshot (1 s)."
echo "CPU share of all CPUs: the sampler's CPU over all the node's CPUs, the least it can slow a job on every CPU (the"
echo "noise rows add cache and wake-up effects, but one pair on a shared VM moves by several %: this row is the steady bound)."
echo "OS noise: bench/noise.c on every CPU, $NOISE_S s per run; 'without' = the same sampler SIGSTOPped. Other load on the"
echo "machine (see uptime) moves every figure: compare ours and C, which ran in the same minutes."
