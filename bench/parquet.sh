#!/usr/bin/env bash
# bench/parquet.sh (run by `make bench`; alone: bash bench/parquet.sh [out/bin]): the spool -> Parquet conversion of a
# job's file, as the node sampler (or an epilog) runs it at the end of a job: bytes per counter reading and the
# conversion's peak RSS, on generated spools shaped like a real job's (bench/spool_gen.c: jittered 1 kHz ticks,
# RAPL-quantised counters, the period's snapshot and share rows). Each conversion is `alumet-hpc parquet export`
# (the finalization's exporter) under the probe: wait4 ru_maxrss is the whole process, runtime included.
#   BENCH_PARQUET_RAW_S   seconds of the raw spool (default 600: a 10-minute raw job, 3.6 M readings)
#   BENCH_PARQUET_AGG_S   seconds of the 1 s storage spool (default 3600: a 1-hour job)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init parquet "$@"
RAW_S=${BENCH_PARQUET_RAW_S:-600}
AGG_S=${BENCH_PARQUET_AGG_S:-3600}
bench_build probe
gcc -O2 -Wall -o "$OUT/spool_gen" "$ROOT/bench/spool_gen.c" -lm || die "gcc failed on bench/spool_gen.c"

# convert NAME SECONDS PERIOD_MS: generates the spool, converts it under the probe; sets C_* figures.
convert() {
    local dir=$WORK/$1
    mkdir -p "$dir/spool"
    local gen; gen=$("$OUT/spool_gen" "$dir/spool" "$2" "$3") || die "spool_gen failed"
    C_RECORDS=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' <<<"$gen")
    C_READINGS=$(sed -n 's/.*readings=\([0-9]*\).*/\1/p' <<<"$gen")
    C_SPOOL=$(stat -c %s "$dir/spool/spool.bin")
    "$OUT/probe" "$dir/probe.txt" wait -- "$BIN" parquet export "$dir/spool" "$dir/job.parquet" > "$dir/out.txt" 2>&1 \
        || die "$1: probe failed"
    [[ $(kv "$dir/probe.txt" exit_code) == 0 ]] || { cat "$dir/out.txt" >&2; die "$1: alumet-hpc parquet export failed"; }
    C_BYTES=$(stat -c %s "$dir/job.parquet")
    C_BPR=$(calc "sprintf(\"%.3f\", $C_BYTES / $C_READINGS)")
    C_BROW=$(calc "sprintf(\"%.2f\", $C_BYTES / $C_RECORDS)")
    C_RSS=$(calc "sprintf(\"%.1f\", $(kv "$dir/probe.txt" maxrss_kb) / 1024)")
    C_WALL=$(calc "sprintf(\"%.2f\", $(kv "$dir/probe.txt" wall_ns) / 1e9)")
    C_CPU=$(calc "sprintf(\"%.2f\", $(kv "$dir/probe.txt" cpu_total_ns) / 1e9)")
    C_GROUPS=$(sed -n 's/.* \([0-9]*\) row groups.*/\1/p' "$dir/out.txt")
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "raw spool: $RAW_S s at 1 kHz; 1 s storage spool: $AGG_S s (load $LOAD_BEFORE)"
convert raw "$RAW_S" 0
R=("$C_RECORDS" "$C_READINGS" "$C_SPOOL" "$C_BYTES" "$C_BPR" "$C_RSS" "$C_WALL" "$C_CPU" "$C_GROUPS")
convert agg "$AGG_S" 1000
A=("$C_RECORDS" "$C_READINGS" "$C_SPOOL" "$C_BYTES" "$C_BROW" "$C_RSS" "$C_WALL" "$C_CPU" "$C_GROUPS")
"$OUT/probe" "$WORK/help.txt" wait -- "$BIN" --help > /dev/null 2>&1 || die "--help: probe failed"
HELP_RSS=$(calc "sprintf(\"%.1f\", $(kv "$WORK/help.txt" maxrss_kb) / 1024)")
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

{
echo "Parquet conversion (bench/parquet.sh) — $(date -u +%Y-%m-%dT%H:%M:%SZ), load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
printf '%-46s %14s %14s\n' "" "raw, ${RAW_S} s" "1 s storage, ${AGG_S} s"
printf '%-46s %14s %14s\n' "spool records / counter readings" "${R[0]}/${R[1]}" "${A[0]}/${A[1]}"
printf '%-46s %14s %14s\n' "spool bytes" "${R[2]}" "${A[2]}"
printf '%-46s %14s %14s\n' "Parquet bytes (row groups)" "${R[3]} (${R[8]})" "${A[3]} (${A[8]})"
printf '%-46s %14s %14s\n' "Parquet bytes per reading (raw) / per row (1 s)" "${R[4]}" "${A[4]}"
printf '%-46s %14s %14s\n' "peak RSS of the conversion, whole process (MB)" "${R[5]}" "${A[5]}"
printf '%-46s %14s %14s\n' "wall / CPU (s)" "${R[6]} / ${R[7]}" "${A[6]} / ${A[7]}"
echo "target: <= 2 B per raw reading; alumet-hpc --help alone peaks at $HELP_RSS MB (the runtime's floor)"
} | tee "$OUT/parquet.txt"
