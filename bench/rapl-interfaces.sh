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
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init rapl-interfaces "$@"
bench_build c_reader advance probe rapl_read_cost

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
TREE=$WORK/powercap
powercap_tree "$TREE"
ADV_ARGS=("${PC_ADVANCE[@]}"); MSR_ITEMS=(); PERF_ITEMS=()
for s in 0 1; do
    for reg in 0x611 0x639 0x619; do   # package, core, dram: the watts of powercap_tree's domains
        case $reg in 0x611) w=110 ;; 0x639) w=70 ;; *) w=12 ;; esac
        ADV_ARGS+=("$WORK/msr/$s/msr@$reg:$w")
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
start_advancer 1000 "${ADV_ARGS[@]}"

JOB=3000
run_ours() { # NAME IFACE
    local dir=$WORK/$1; mkdir -p "$dir"; JOB=$((JOB + 1))
    # storage_period_ms = 0 (raw): the sampler ticks at rapl_hz only when every read is stored (the rate follows the need).
    sampler_toml "$dir" 'attribution = "exclusive"
storage_period_ms = 0' "rapl = \"on\"
nvml = \"off\"
rapl_interface = \"$2\"" "msr_root = \"$WORK/msr\"
cpu_root = \"$WORK/cpu\"
cpuinfo = \"$WORK/cpuinfo\"
perf_pmu_root = \"$WORK/perf\"
cgroup_root = \"$dir/cgroup\""
    run_sample "$dir" "$JOB"
    grep -q "RAPL via $2 " "$dir/alumet-hpc.log" || die "$1: the sampler did not read through $2 (see $dir/alumet-hpc.log)"
}

UPTIME_BEFORE=$(uptime)
say "$ROUNDS round(s) x 3 interfaces x (ours, C), $((WARMUP + SECS)) s each at $HZ Hz"
declare -A O C
for ((r = 1; r <= ROUNDS; r++)); do
    for iface in powercap msr perf; do
        say "round $r: $iface"
        run_ours "o-$iface-$r" "$iface"
        case $iface in
            powercap) run_c "$WORK/c-$iface-$r" "${PC_FILES[@]}" ;;
            msr) run_c "$WORK/c-$iface-$r" "${MSR_ITEMS[@]}" ;;
            perf) run_c "$WORK/c-$iface-$r" "${PERF_ITEMS[@]}" ;;
        esac
        O[$iface]+="$(cpu_tick "$WORK/o-$iface-$r/probe.txt" "$WORK/o-$iface-$r/stats.json" jv) "
        C[$iface]+="$(cpu_tick "$WORK/c-$iface-$r/probe.txt" "$WORK/c-$iface-$r/stats.txt" kv) "
    done
done
stop_advancer

echo
echo "RAPL interfaces: CPU per tick, 6 counters (2 packages x 3 domains), $HZ Hz, medians of $ROUNDS round(s) of $SECS s — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "uptime before: $UPTIME_BEFORE"
echo "uptime after:  $(uptime)"
printf '%-10s %12s %12s %8s   %s\n' interface "ours (µs)" "C (µs)" ours/C "rounds ours | C"
for iface in perf msr powercap; do
    # shellcheck disable=SC2086
    o=$(median ${O[$iface]}); c=$(median ${C[$iface]})
    printf '%-10s %12s %12s %8s   %s| %s\n' "$iface" "$o" "$c" "$(ratio "$o" "$c")" "${O[$iface]}" "${C[$iface]}"
done
echo
echo "one counter read, pinned to CPU 0 (bench/rapl_read_cost.c; 20000 reads each):"
mkdir -p "$WORK/cost"
"$OUT/rapl_read_cost" "$WORK/cost" 20000 | sed 's/^/  /'
echo "perf's counters on CPU 1 are read there through a cross-CPU call; on real RAPL the msr driver and powercap make the"
echo "same call for every read (the cpuid rows), which their generated files here skip: compare the cross-CPU rows, not only the table."
echo "auto order (Sources/Rapl/RaplInterfaces.cs): perf, msr, powercap"
