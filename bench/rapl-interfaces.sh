#!/usr/bin/env bash
# CPU per tick of each RAPL interface (issue 12): the sampler with rapl_interface = powercap | msr | perf against
# bench/c_reader.c doing the same reads, on generated inputs of the same shape (2 packages x 3 domains = 6 counters):
#   powercap  6 energy_uj text files (as run.sh), advanced at 1 kHz by bench/advance.c
#   msr       2 generated /dev/cpu/N/msr files holding PKG 0x611, PP0 0x639, DRAM 0x619 at their offsets, advanced at 1 kHz
#   perf      a PMU description pointing at the software PMU (type 1, CPU_CLOCK): 6 real perf_event_open counters
#             (3 per CPU, CPUs 0 and 1), read with read(2) like the power PMU; no RAPL on this machine, so the kernel
#             work behind a real RAPL read (an MSR read on the package's CPU) is absent from all three alike.
# Called by bench/run.sh (`make bench`); alone: bash bench/rapl-interfaces.sh [out/bin/alumet-hpc] (takes
# /tmp/alumet-bench.lock itself then). Knobs: BENCH_SECONDS (default 10), BENCH_WARMUP (1), BENCH_HZ (1000),
# BENCH_ROUNDS (default 1; medians), BENCH_TICK (fifo|normal, as run.sh), BENCH_KEEP=1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${ALUMET_BENCH_LOCKED:-} ]]; then
    # Standalone: hold the machine's benchmark lock for the whole run (run.sh's caller holds it otherwise).
    exec env ALUMET_BENCH_LOCKED=1 flock -w 1800 /tmp/alumet-bench.lock bash "${BASH_SOURCE[0]}" "$@"
fi
BIN=${ALUMET_HPC_BIN:-$ROOT/out/bin/alumet-hpc}
if [[ $# -ge 1 ]]; then if [[ -d $1 ]]; then BIN=$1/alumet-hpc; else BIN=$1; fi; fi
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-1}
HZ=${BENCH_HZ:-1000}
ROUNDS=${BENCH_ROUNDS:-1}
TICK=${BENCH_TICK:-fifo}
export BENCH_C_FIFO=$([[ $TICK == fifo ]] && echo 1 || echo 0)
OUT=$ROOT/out/bench
die() { echo "rapl-interfaces: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN not found: run 'make publish' first (or set ALUMET_HPC_BIN)"
mkdir -p "$OUT"
for prog in c_reader advance probe rapl_read_cost; do
    gcc -O2 -Wall -o "$OUT/$prog" "$ROOT/bench/$prog.c" || die "gcc failed on bench/$prog.c"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumet-rapl-bench.XXXXXX")
ADV_PID=
cleanup() {
    if [[ -n $ADV_PID ]]; then kill "$ADV_PID" 2>/dev/null || true; wait "$ADV_PID" 2>/dev/null || true; fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "rapl-interfaces: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

MAX_RANGE=262143328850
# ---------------------------------------------------------------- the generated node: topology, cpuinfo, trees
for c in 0 1; do
    mkdir -p "$WORK/cpu/cpu$c/topology" "$WORK/msr/$c"
    echo "$c" > "$WORK/cpu/cpu$c/topology/physical_package_id"; echo 0 > "$WORK/cpu/cpu$c/topology/die_id"
    echo 0 > "$WORK/cpu/cpu$c/topology/core_id"
    : > "$WORK/msr/$c/msr"
done
echo 1 > "$WORK/cpu/cpu1/online"
printf 'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 158\n\n' > "$WORK/cpuinfo"
# MSR_RAPL_POWER_UNIT = 0xA0E03: ESU 14 (61.035 µJ), written once; the counters move.
printf '\x03\x0e\x0a\x00\x00\x00\x00\x00' | dd of="$WORK/msr/0/msr" bs=1 seek=$((0x606)) conv=notrunc status=none
printf '\x03\x0e\x0a\x00\x00\x00\x00\x00' | dd of="$WORK/msr/1/msr" bs=1 seek=$((0x606)) conv=notrunc status=none
ADV_ARGS=(); PC_ITEMS=(); MSR_ITEMS=(); PERF_ITEMS=()
for s in 0 1; do
    for z in "intel-rapl:$s package-$s 110 0x611" "intel-rapl:$s:0 core 70 0x639" "intel-rapl:$s:1 dram 12 0x619"; do
        read -r dir name watts reg <<<"$z"
        mkdir -p "$WORK/powercap/$dir"
        echo "$name" > "$WORK/powercap/$dir/name"; echo 1 > "$WORK/powercap/$dir/enabled"
        echo "$MAX_RANGE" > "$WORK/powercap/$dir/max_energy_range_uj"
        printf '%020d\n' 0 > "$WORK/powercap/$dir/energy_uj"
        ADV_ARGS+=("$WORK/powercap/$dir/energy_uj:$watts" "$WORK/msr/$s/msr@$reg:$watts")
        PC_ITEMS+=("$WORK/powercap/$dir/energy_uj")
        MSR_ITEMS+=("msr:$WORK/msr/$s/msr:$reg")
    done
done
mkdir -p "$WORK/perf/power/events"
echo 1 > "$WORK/perf/power/type"; echo "0,1" > "$WORK/perf/power/cpumask"
for ev in energy-pkg energy-cores energy-ram; do
    echo "event=0x00" > "$WORK/perf/power/events/$ev"
    echo "2.3283064365386962890625e-10" > "$WORK/perf/power/events/$ev.scale"
    echo "Joules" > "$WORK/perf/power/events/$ev.unit"
done
for cpu in 0 1; do for ev in 1 2 3; do PERF_ITEMS+=("perf:1:0:$cpu"); done; done
nice -n 19 "$OUT/advance" 1000 "$MAX_RANGE" "${ADV_ARGS[@]}" 2> "$WORK/advance.txt" &
ADV_PID=$!
sleep 0.2
kill -0 "$ADV_PID" 2>/dev/null || die "counter advancer failed: $(cat "$WORK/advance.txt")"

kv() { sed -n "s/^$2=//p" "$1" | head -n1; }
jv() { sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\([-0-9.eE+]*\).*/\1/p" "$1" | head -n1; }
# CPU per tick, µs: the probe's window CPU over the ticks in the window (achieved rate x window).
cpu_tick() { # probe stats getter
    local t m; t=$($3 "$2" ticks); m=$($3 "$2" missed_ticks)
    awk -v c="$(kv "$1" cpu_window_ns)" -v w="$(kv "$1" window_ns)" -v t="$t" -v m="$m" -v hz="$HZ" \
        'BEGIN { printf "%.2f", (c / 1000) / (hz * t / (t + m) * w / 1e9) }'
}
JOB=3000
run_ours() { # NAME IFACE
    local dir=$WORK/$1; mkdir -p "$dir"; JOB=$((JOB + 1))
    cat > "$dir/alumet.toml" <<TOML
[sampler]
rapl_hz = $HZ
tick_scheduling = "$TICK"
attribution = "exclusive"

[sources]
rapl = "on"
rapl_interface = "$2"
estimate = "off"
nvml = "off"

[paths]
powercap_root = "$WORK/powercap"
msr_root = "$WORK/msr"
cpu_root = "$WORK/cpu"
cpuinfo = "$WORK/cpuinfo"
perf_pmu_root = "$WORK/perf"
cgroup_root = "$dir/cgroup"
state_dir = "$dir/state"
data_dir = "$dir/data"
database = "$dir/accounting.db"
log_file = "$dir/alumet-hpc.log"
TOML
    "$OUT/probe" "$dir/probe.txt" "$WARMUP" "$SECS" -- "$BIN" sample --scheduler exec --job-id "$JOB" --user bench --uid 0 \
        --node bench --exclusive --config "$dir/alumet.toml" > "$dir/stdout.txt" 2>&1 || die "$1: probe failed; see $dir"
    [[ $(kv "$dir/probe.txt" exit_code) == 0 ]] || { cat "$dir/stdout.txt" >&2; die "$1: alumet-hpc sample failed"; }
    grep -q "RAPL via $2 " "$dir/alumet-hpc.log" || die "$1: the sampler did not read through $2 (see $dir/alumet-hpc.log)"
    cp "$dir/state/exec/$JOB/stats.json" "$dir/stats.json"
}
run_c() { # NAME ITEM...
    local dir=$WORK/$1; mkdir -p "$dir"; shift
    "$OUT/probe" "$dir/probe.txt" "$WARMUP" "$SECS" -- "$OUT/c_reader" "$dir/stats.txt" "$HZ" "$@" > /dev/null 2>&1 || die "C reader: probe failed"
    [[ $(kv "$dir/probe.txt" exit_code) == 0 && -f $dir/stats.txt ]] || die "C reader failed on $1"
    [[ $(kv "$dir/stats.txt" read_errors) == 0 ]] || die "C reader: read errors on $1"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

UPTIME_BEFORE=$(uptime)
echo "rapl-interfaces: $ROUNDS round(s) x 3 interfaces x (ours, C), $((WARMUP + SECS)) s each at $HZ Hz" >&2
declare -A O C
for ((r = 1; r <= ROUNDS; r++)); do
    for iface in powercap msr perf; do
        echo "rapl-interfaces: round $r: $iface" >&2
        run_ours "o-$iface-$r" "$iface"
        case $iface in
            powercap) run_c "c-$iface-$r" "${PC_ITEMS[@]}" ;;
            msr) run_c "c-$iface-$r" "${MSR_ITEMS[@]}" ;;
            perf) run_c "c-$iface-$r" "${PERF_ITEMS[@]}" ;;
        esac
        O[$iface]+="$(cpu_tick "$WORK/o-$iface-$r/probe.txt" "$WORK/o-$iface-$r/stats.json" jv) "
        C[$iface]+="$(cpu_tick "$WORK/c-$iface-$r/probe.txt" "$WORK/c-$iface-$r/stats.txt" kv) "
    done
done
kill "$ADV_PID"; wait "$ADV_PID" 2>/dev/null || true; ADV_PID=

echo
echo "RAPL interfaces: CPU per tick, 6 counters (2 packages x 3 domains), $HZ Hz, medians of $ROUNDS round(s) of $SECS s — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "uptime before: $UPTIME_BEFORE"
echo "uptime after:  $(uptime)"
printf '%-10s %12s %12s %8s   %s\n' interface "ours (µs)" "C (µs)" ours/C "rounds ours | C"
for iface in perf msr powercap; do
    # shellcheck disable=SC2086
    o=$(median ${O[$iface]}); c=$(median ${C[$iface]})
    printf '%-10s %12.2f %12.2f %8.2f   %s| %s\n' "$iface" "$o" "$c" "$(awk -v a="$o" -v b="$c" 'BEGIN { printf "%.2f", a / b }')" "${O[$iface]}" "${C[$iface]}"
done
echo
echo "one counter read, pinned to CPU 0 (bench/rapl_read_cost.c; 20000 reads each):"
mkdir -p "$WORK/cost"
"$OUT/rapl_read_cost" "$WORK/cost" 20000 | sed 's/^/  /'
echo "perf's counters on CPU 1 are read there through a cross-CPU call; on real RAPL the msr driver and powercap make the"
echo "same call for every read (the cpuid rows), which their generated files here skip: compare the cross-CPU rows, not only the table."
echo "auto order (Sources/Rapl/RaplInterfaces.cs): perf, msr, powercap"
