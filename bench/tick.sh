#!/usr/bin/env bash
# The CPU-per-tick verdict of `alumet-hpc sample` at raw 1 kHz against bench/c_reader.c (issue 8: <= 1.2 x C), by paired
# short rounds of fresh processes (bench/README.md "CPU per tick: paired rounds"): on this 2-vCPU VM one process's
# CPU per tick is set for its whole life by where it lands, so one long round's ratio says nothing at the 1.2 scale.
# Each round starts, at the same time and in a random order, a fresh `sample` (storage_period_ms = 0: the tick at
# BENCH_HZ), a fresh C reader on the same 6 counters and a second fresh C reader (the A/A check: C against C), each
# under the probe for BENCH_WARMUP + BENCH_TICK_SECONDS; ours/C is the geometric mean of the per-round ratios with a
# 95 % CI (Student t on the log ratios), PASS when the CI lies at or below 1.2, MISS when above, else unresolved; C'/C
# must cover 1 or the run cannot tell a difference of that size.
# Called by bench/run.sh (`make bench`); alone: bash bench/tick.sh [out/bin/alumet-hpc]. Knobs: BENCH_TICK_ROUNDS (16),
# BENCH_TICK_SECONDS (2), BENCH_WARMUP (1), BENCH_HZ (1000), BENCH_TICK (fifo|normal), BENCH_KEEP=1, BENCH_TICK_BIN_B (another
# alumet-hpc, e.g. the build before a change: a fresh `sample` of it joins every round, and B/ours is printed with its CI:
# an A/B of two builds under the same load, paired like ours/C).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init tick "$@"
bench_build c_reader advance probe
TREE=$WORK/powercap
powercap_tree "$TREE"
start_advancer 1000 "${PC_ADVANCE[@]}"

# ours DIR JOB: one `sample` of an exclusive job with raw storage (the case with a tick thread), as bench/run.sh's tickR.
ours() {
    mkdir -p "$1/cgroup"
    sampler_toml "$1" 'storage_period_ms = 0
attribution = "exclusive"' 'rapl = "on"
nvml = "off"' "cgroup_root = \"$1/cgroup\""
    run_sample "$1" "$2"
}

# BENCH_TICK_BUSY=1: a SCHED_IDLE spinner pinned to every CPU during the rounds (a node whose CPUs run a job: every tick
# then preempts work instead of waking an idle vCPU), for ours and C alike.
if [[ ${BENCH_TICK_BUSY:-0} == 1 ]]; then
    for ((cpu = 0; cpu < $(nproc); cpu++)); do
        chrt -i 0 taskset -c "$cpu" bash -c 'while :; do :; done' & BENCH_PIDS+=($!)
    done
fi
BIN_B=${BENCH_TICK_BIN_B:-}
if [[ -n $BIN_B ]]; then [[ -d $BIN_B ]] && BIN_B=$BIN_B/alumet-hpc; [[ -x $BIN_B ]] || die "BENCH_TICK_BIN_B: $BIN_B not found"; fi
UPTIME_BEFORE=$(uptime)
say "$(nproc) CPUs; $TICK_ROUNDS rounds of fresh (ours, C, C') started together, ${WARMUP} s warm-up + ${TICK_SECS} s window each"
: > "$WORK/rounds.txt"
for ((r = 1; r <= TICK_ROUNDS; r++)); do
    pids=() order=()
    for who in $(printf '%s\n' ours c c2 ${BIN_B:+b} | shuf); do
        case $who in
            ours) ( SECS=$TICK_SECS ours "$WORK/ours-$r" $((7000 + r)) ) & ;;
            b) ( BIN=$BIN_B SECS=$TICK_SECS ours "$WORK/b-$r" $((8000 + r)) ) & ;;
            *) ( SECS=$TICK_SECS run_c "$WORK/$who-$r" "${PC_FILES[@]}" ) & ;;
        esac
        pids+=($!) order+=("$who")
    done
    for p in "${pids[@]}"; do wait "$p" || die "round $r failed"; done
    # Columns: ours C C' B (- without BENCH_TICK_BIN_B), then the start order.
    echo "$(cpu_tick "$WORK/ours-$r/probe.txt" "$WORK/ours-$r/stats.json" jv) $(cpu_tick "$WORK/c-$r/probe.txt" "$WORK/c-$r/stats.txt" kv)" \
         "$(cpu_tick "$WORK/c2-$r/probe.txt" "$WORK/c2-$r/stats.txt" kv)" \
         "$([[ -n $BIN_B ]] && cpu_tick "$WORK/b-$r/probe.txt" "$WORK/b-$r/stats.json" jv || echo -) ${order[*]}" >> "$WORK/rounds.txt"
done
stop_advancer
CI=$(ratio_ci "$WORK/rounds.txt" 1 2) AA=$(ratio_ci "$WORK/rounds.txt" 3 2) AB=$(ratio_ci "$WORK/rounds.txt" 4 1) BC=$(ratio_ci "$WORK/rounds.txt" 4 2)

row() { printf '%-44s %10s %10s %-22s %-10s %s\n' "$@"; }
echo
echo "CPU per tick, sample at raw $HZ Hz (issue 8) — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs; ours = $BIN sample, C = bench/c_reader.c"
echo "uptime before: $UPTIME_BEFORE"
echo "uptime after:  $(uptime)"
echo "$TICK_ROUNDS rounds, each: fresh ours, C and C' started together (random order), ${TICK_SECS} s window after ${WARMUP} s; tick thread: $TICK"
row figure ours C ratio target result
row -------------------------------------------- ---------- ---------- ---------------------- ---------- ------
row "CPU per tick (µs), median of the rounds" "$(median $(awk '{ print $1 }' "$WORK/rounds.txt"))" "$(median $(awk '{ print $2 }' "$WORK/rounds.txt"))" "" "" ""
row "ours/C, geometric mean [95 % CI]" "" "" "$(ci_text "$CI")" "<= 1.2" "$(ci_verdict "$CI" 1.2)"
row "C'/C, the A/A check [95 % CI]" "" "" "$(ci_text "$AA")" "covers 1" "$(covers1 "$AA")"
if [[ -n $BIN_B ]]; then
    echo "B = $BIN_B (BENCH_TICK_BIN_B), a fresh sample of it in every round"
    row "B/ours, geometric mean [95 % CI]" "" "" "$(ci_text "$AB")" "" ""
    row "B/C, geometric mean [95 % CI]" "" "" "$(ci_text "$BC")" "<= 1.2" "$(ci_verdict "$BC" 1.2)"
    row "CPU per tick of B (µs), median of the rounds" "$(median $(awk '{ print $4 }' "$WORK/rounds.txt"))" "" "" "" ""
fi
echo "rounds (µs per tick: ours C C' B, start order): $(awk '{ printf "%s%s/%s/%s/%s (", (NR > 1 ? ", " : ""), $1, $2, $3, $4; for (i = 5; i <= NF; i++) printf "%s%s", $i, (i < NF ? " " : ""); printf ")" }' "$WORK/rounds.txt")"
echo "sd of one round's log ratio: ours/C $(awk '{ print $5 }' <<<"$CI"), C'/C $(awk '{ print $5 }' <<<"$AA")${BIN_B:+, B/ours $(awk '{ print $5 }' <<<"$AB")} (the CI's half-width shrinks as 1/sqrt(rounds))"
