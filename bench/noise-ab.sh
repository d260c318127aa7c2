#!/usr/bin/env bash
# OS noise at 1 kHz of two builds of the node sampler, A/B in ALTERNATED blocks (A B B A, repeated): each block is
# `BENCH_NODE_ONLY=noise bash bench/node.sh BIN` (ours − C paired, BENCH_AB_ROUNDS rounds, BENCH_NOISE_VS_JOBS jobs), and
# the rounds of each build are pooled. One block per build measures the hour as much as the build: on this VM one
# build's blocks of 7 rounds ranged over 0.37 point (README, Performance: the thread policies' A/B of 2026-12-02).
# Usage: bash bench/noise-ab.sh BIN_A BIN_B. Knobs: BENCH_AB_BLOCKS (4: A B B A), BENCH_AB_ROUNDS (7), BENCH_NOISE_VS_JOBS (8).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[[ $# == 2 && -x $1 && -x $2 ]] || die "usage: bash bench/noise-ab.sh BIN_A BIN_B (two alumet-hpc binaries)"
A=$(readlink -f "$1") B=$(readlink -f "$2")
bench_init noise-ab "$A" "$B"
BLOCKS=${BENCH_AB_BLOCKS:-4} ROUNDS=${BENCH_AB_ROUNDS:-7} JOBS=${BENCH_NOISE_VS_JOBS:-8}
declare -A ROWS=([A]=$WORK/rows-A [B]=$WORK/rows-B)
: > "${ROWS[A]}"; : > "${ROWS[B]}"
for ((i = 0; i < BLOCKS; i++)); do
    who=A; (( i % 4 == 1 || i % 4 == 2 )) && who=B
    bin=$A; [[ $who == B ]] && bin=$B
    say "block $((i + 1))/$BLOCKS: $who ($bin), $ROUNDS rounds, $JOBS job(s)"
    out=$WORK/block-$i.txt
    BENCH_NODE_ONLY=noise BENCH_NOISE_VS_ROUNDS=$ROUNDS BENCH_NOISE_VS_JOBS=$JOBS bash "$ROOT/bench/node.sh" "$bin" > "$out" 2>&1 \
        || { cat "$out" >&2; die "block $((i + 1)) ($who) failed"; }
    # per round: "  N: slowdown share+eff share | C'-C slowdown share+eff share"
    grep -E '^  [0-9]+: ' "$out" | tr -d ':|' | tee -a "${ROWS[$who]}" \
        | awk -v w="$who" -v b=$((i + 1)) '{ s += $3; n++ } END { printf "block %d (%s): share + efficiency %.3f (mean of %d rounds)\n", b, w, s / n, n }'
done
echo
echo "OS noise at 1 kHz, $JOBS job(s), ours − C paired, alternated A/B — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs"
echo "A = $A"; echo "B = $B"
for who in A B; do
    echo "$who: $(wc -l < "${ROWS[$who]}") rounds; share + efficiency $(ci_text "$(mean_ci "${ROWS[$who]}" 3)"); CPU share $(ci_text "$(mean_ci "${ROWS[$who]}" 4)"); slowdown $(ci_text "$(mean_ci "${ROWS[$who]}" 2)"); A/A share + efficiency $(ci_text "$(mean_ci "${ROWS[$who]}" 6)")"
done
