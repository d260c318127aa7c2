# bench/lib.sh: what the `make bench` scripts share (sourced by run.sh, rapl-interfaces.sh, node.sh): the machine's
# benchmark lock, knobs, the C programs, the temporary directory, the generated powercap tree and its advancer,
# the sampler's config, one probed `alumet-hpc sample` run, and the figure helpers. See bench/README.md.
# shellcheck shell=bash

MAX_RANGE=262143328850   # a real max_energy_range_uj (2^32 units of 61.035 µJ), as PowercapTree.Standard

# bench_init NAME "$@": takes /tmp/alumet-bench.lock for the whole script (re-executing it under flock unless a caller
# already holds it: ALUMET_BENCH_LOCKED=1), then sets ROOT, BIN (first argument: the binary or its directory; else
# $ALUMET_HPC_BIN; else out/bin/alumet-hpc), OUT, the common knobs and BENCH_C_FIFO, and a temporary WORK directory
# removed at exit (BENCH_KEEP=1 keeps it) after every pid in BENCH_PIDS is stopped.
bench_init() {
    BENCH_NAME=$1; shift
    if [[ ${ALUMET_BENCH_LOCKED:-0} != 1 ]] && ! lock_held_by_ancestor /tmp/alumet-bench.lock; then
        exec env ALUMET_BENCH_LOCKED=1 flock -w 2400 /tmp/alumet-bench.lock bash "${BASH_SOURCE[-1]}" "$@"
    fi
    export ALUMET_BENCH_LOCKED=1
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    BIN=${ALUMET_HPC_BIN:-$ROOT/out/bin/alumet-hpc}
    if [[ $# -ge 1 ]]; then if [[ -d $1 ]]; then BIN=$1/alumet-hpc; else BIN=$1; fi; fi
    SECS=${BENCH_SECONDS:-10}
    WARMUP=${BENCH_WARMUP:-1}
    HZ=${BENCH_HZ:-1000}
    ROUNDS=${BENCH_ROUNDS:-1}
    # The product's default: only the tick thread at SCHED_FIFO 1 (tick_scheduling = "fifo"); the C reader does the
    # same. BENCH_TICK=normal runs both under normal scheduling.
    TICK=${BENCH_TICK:-fifo}
    [[ $TICK == fifo || $TICK == normal ]] || die "BENCH_TICK must be fifo or normal"
    export BENCH_C_FIFO=$([[ $TICK == fifo ]] && echo 1 || echo 0)
    OUT=$ROOT/out/bench
    [[ -x $BIN ]] || die "$BIN not found: run 'make publish' first (or set ALUMET_HPC_BIN)"
    command -v gcc >/dev/null || die "gcc not found (apt-get install gcc)"
    mkdir -p "$OUT"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/alumet-$BENCH_NAME.XXXXXX")
    BENCH_PIDS=()
    trap bench_cleanup EXIT
}

# lock_held_by_ancestor FILE: whether this process or one of its ancestors holds a flock on FILE, as under the documented
# `flock /tmp/alumet-bench.lock make bench` (flock(1) locks, then runs the command as its child): taking it again from
# here would wait for ourselves. /proc/locks: "N: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF".
lock_held_by_ancestor() {
    local ino holders p=$$
    ino=$(stat -c %i "$1" 2>/dev/null) || return 1
    holders=" $(awk -v ino="$ino" '$2 == "FLOCK" && $6 ~ (":" ino "$") { printf "%s ", $5 }' /proc/locks 2>/dev/null) "
    while [[ -n $p && $p -gt 1 ]]; do
        [[ $holders == *" $p "* ]] && return 0
        p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
    done
    return 1
}

die() { echo "${BENCH_NAME:-bench}: $*" >&2; exit 1; }
say() { echo "${BENCH_NAME:-bench}: $*" >&2; }

bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}

# bench_build PROG...: gcc -O2 bench/PROG.c into $OUT/PROG.
bench_build() {
    local prog
    for prog in "$@"; do gcc -O2 -Wall -pthread -o "$OUT/$prog" "$ROOT/bench/$prog.c" -lm || die "gcc failed on bench/$prog.c"; done
}

# powercap_tree DIR: 2 packages x (package, core, dram), flat like /sys/class/powercap, counters zero-padded as the
# test fakes. Sets PC_FILES (the 6 energy_uj files) and PC_ADVANCE (FILE:WATTS for bench/advance.c).
powercap_tree() {
    local s z dir name watts
    PC_FILES=(); PC_ADVANCE=()
    for s in 0 1; do
        for z in "intel-rapl:$s package-$s 110" "intel-rapl:$s:0 core 70" "intel-rapl:$s:1 dram 12"; do
            read -r dir name watts <<<"$z"
            mkdir -p "$1/$dir"
            echo "$name" > "$1/$dir/name"
            echo 1 > "$1/$dir/enabled"
            echo "$MAX_RANGE" > "$1/$dir/max_energy_range_uj"
            printf '%020d\n' 0 > "$1/$dir/energy_uj"
            PC_FILES+=("$1/$dir/energy_uj")
            PC_ADVANCE+=("$1/$dir/energy_uj:$watts")
        done
    done
}

# start_advancer HZ FILE[@OFFSET]:WATTS...: bench/advance.c at nice 19 (the samplers preempt it; it runs under ours and
# C alike); its CPU figures go to $WORK/advance.txt at exit. Sets ADV_PID.
start_advancer() {
    local hz=$1; shift
    nice -n 19 "$OUT/advance" "$hz" "$MAX_RANGE" "$@" 2> "$WORK/advance.txt" &
    ADV_PID=$!
    BENCH_PIDS+=("$ADV_PID")
    sleep 0.2
    kill -0 "$ADV_PID" 2>/dev/null || die "counter advancer failed: $(cat "$WORK/advance.txt")"
}
stop_advancer() { kill "$ADV_PID" 2>/dev/null || true; wait "$ADV_PID" 2>/dev/null || true; }

# sampler_toml DIR SAMPLER_LINES SOURCES_LINES PATHS_LINES: DIR/alumet.toml for a sampler whose state, data, database and
# log live in DIR, on the powercap tree $TREE; each *_LINES adds lines to its section (TOML defines a table once).
sampler_toml() {
    cat > "$1/alumet.toml" <<EOF
[sampler]
rapl_hz = $HZ
tick_scheduling = "$TICK"
# stats.json is read from the job's state dir after the sampler exits
keep_state = "always"
$2

[sources]
estimate = "off"
$3

[paths]
powercap_root = "$TREE"
state_dir = "$1/state"
data_dir = "$1/data"
database = "$1/accounting.db"
log_file = "$1/alumet-hpc.log"
$4
EOF
}

# run_sample DIR JOB [PREFIX...]: `alumet-hpc sample` of job JOB (exec scheduler, exclusive) with DIR/alumet.toml under the
# probe (bench/probe.c: WARMUP then a SECS window, then SIGTERM); PREFIX runs it (e.g. chrt -f 1). Leaves
# DIR/{probe.txt,stats.json,stdout.txt}; dies when the sampler fails.
run_sample() {
    local dir=$1 job=$2; shift 2
    mkdir -p "$dir/state" "$dir/data"
    "$OUT/probe" "$dir/probe.txt" "$WARMUP" "$SECS" -- "$@" "$BIN" sample --scheduler exec --job-id "$job" \
        --user bench --uid 0 --node bench --exclusive --config "$dir/alumet.toml" > "$dir/stdout.txt" 2>&1 \
        || die "$dir: probe failed (sampler did not stop within 60 s of SIGTERM)"
    local code; code=$(kv "$dir/probe.txt" exit_code)
    if [[ $code != 0 ]]; then
        cat "$dir/stdout.txt" >&2; tail -n 20 "$dir/alumet-hpc.log" >&2 2>/dev/null || true
        die "$dir: alumet-hpc sample exited with $code"
    fi
    local stats=$dir/state/exec/$job/stats.json
    [[ -f $stats ]] || die "$dir: no $stats (the sampler writes it at exit)"
    cp "$stats" "$dir/stats.json"
}

# run_c DIR ITEM...: bench/c_reader.c at $HZ on ITEMs under the probe, as run_sample. Leaves DIR/{probe.txt,stats.txt}.
run_c() {
    local dir=$1; shift
    mkdir -p "$dir"
    "$OUT/probe" "$dir/probe.txt" "$WARMUP" "$SECS" -- "${C_PREFIX[@]}" "$OUT/c_reader" "$dir/stats.txt" "$HZ" "$@" > "$dir/stdout.txt" 2>&1 \
        || die "C reader: probe failed"
    [[ $(kv "$dir/probe.txt" exit_code) == 0 && -f $dir/stats.txt ]] || { cat "$dir/stdout.txt" >&2; die "C reader failed in $dir"; }
    [[ $(kv "$dir/stats.txt" read_errors) == 0 ]] || die "C reader: read errors in $dir"
}
C_PREFIX=()

kv() { sed -n "s/^$2=//p" "$1" | head -n1; }                                                   # key=value files
jv() { sed -n "s/.*\"$2\"[[:space:]]*:[[:space:]]*\([-0-9.eE+]*\).*/\1/p" "$1" | head -n1; }   # flat JSON numbers
calc() { awk "BEGIN { printf \"%s\", $1 }" 2>/dev/null || printf -; }  # calc 'expr' (awk arithmetic); "-" when an input is missing
num() { awk -v v="$1" -v f="$2" 'BEGIN { if (v == "" || v == "-") printf "-"; else printf f, v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
median() { printf '%s\n' "$@" | { grep -v '^-*$' || true; } | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Paired short rounds (CPU per tick, bench/README.md "Paired rounds"): on this 2-vCPU VM one process's CPU per tick is
# set for its whole life by where it lands (a tick that wakes an idle vCPU costs ~1.6x one that preempts work), so one
# round's ratio is 0.6-1.8 whatever the code. Each round starts FRESH processes of both programs at the same time, and
# the figure is the geometric mean of the per-round ratios with a Student t 95 % CI on their logs.
TICK_ROUNDS=${BENCH_TICK_ROUNDS:-16}
TICK_SECS=${BENCH_TICK_SECONDS:-2}

# ratio_ci FILE COL_A COL_B: FILE holds one line per round; over the rounds with both columns set, prints
# "n geometric-mean-of-A/B ci_low ci_high sd_of_log" (95 %, Student t on the log ratios), or "- - - - -" below 3 rounds.
ratio_ci() {
    awk -v a="$2" -v b="$3" '
        BEGIN { split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045 2.042", t, " ") }
        $a + 0 > 0 && $b + 0 > 0 { x = log($a / $b); n++; s += x; ss += x * x }
        END {
            if (n < 3) { print "- - - - -"; exit }
            m = s / n; v = (ss - n * m * m) / (n - 1); sd = v > 0 ? sqrt(v) : 0
            q = (n - 1 <= 30) ? t[n - 1] : (n - 1 <= 60 ? 2.00 : 1.98)
            h = q * sd / sqrt(n)
            printf "%d %.3f %.3f %.3f %.3f\n", n, exp(m), exp(m - h), exp(m + h), sd
        }' "$1"
}
# mean_ci FILE COL: FILE holds one line per round; over the rounds with the column set, prints "N MEAN LO HI SD": the
# arithmetic mean and its 95 % CI (Student t over the rounds, as ratio_ci) — for per-round differences, which may be < 0.
mean_ci() {
    awk -v a="$2" '
        BEGIN { split("12.706 4.303 3.182 2.776 2.571 2.447 2.365 2.306 2.262 2.228 2.201 2.179 2.160 2.145 2.131 2.120 2.110 2.101 2.093 2.086 2.080 2.074 2.069 2.064 2.060 2.056 2.052 2.048 2.045 2.042", t, " ") }
        $a != "" { x = $a + 0; n++; s += x; ss += x * x }
        END {
            if (n < 3) { print "- - - - -"; exit }
            m = s / n; v = (ss - n * m * m) / (n - 1); sd = v > 0 ? sqrt(v) : 0
            q = (n - 1 <= 30) ? t[n - 1] : (n - 1 <= 60 ? 2.00 : 1.98)
            h = q * sd / sqrt(n)
            printf "%d %.3f %.3f %.3f %.3f\n", n, m, m - h, m + h, sd
        }' "$1"
}
# ci_verdict "N GM LO HI SD" LIMIT: PASS when the CI lies at or below LIMIT, MISS when it lies above, else unresolved.
ci_verdict() {
    local n gm lo hi sd; read -r n gm lo hi sd <<<"$1"
    awk -v lo="$lo" -v hi="$hi" -v l="$2" 'BEGIN { if (lo == "-") print "n/a"; else if (hi + 0 <= l + 0) print "PASS"; else if (lo + 0 > l + 0) print "MISS"; else print "unresolved" }'
}
# ci_text "N GM LO HI SD": "GM [LO, HI]".
ci_text() { local n gm lo hi sd; read -r n gm lo hi sd <<<"$1"; [[ $gm == - ]] && echo - || echo "$gm [$lo, $hi]"; }
# covers1 "N GM LO HI SD": whether an A/A ratio's CI covers 1 (the method's own null check).
covers1() { local n gm lo hi sd; read -r n gm lo hi sd <<<"$1"; awk -v lo="$lo" -v hi="$hi" 'BEGIN { if (lo == "-") print "n/a"; else print (lo + 0 <= 1 && hi + 0 >= 1) ? "covers 1" : "excludes 1" }'; }

# Achieved rate, Hz, of a program that skips and counts missed absolute deadlines (both tickers do): HZ x ticks / (ticks + missed).
rate_of() { # STATS GETTER
    local t m; t=$($2 "$1" ticks); m=$($2 "$1" missed_ticks)
    awk -v t="$t" -v m="$m" -v hz="$HZ" 'BEGIN { if (t + m == 0) print "-"; else printf "%.2f", hz * t / (t + m) }'
}
# CPU per tick, µs: the probe's window CPU over the ticks in the window (achieved rate x window).
cpu_tick() { # PROBE STATS GETTER
    awk -v c="$(kv "$1" cpu_window_ns)" -v w="$(kv "$1" window_ns)" -v r="$(rate_of "$2" "$3")" \
        'BEGIN { if (r == "-" || r + 0 == 0 || w + 0 == 0) print "-"; else printf "%.2f", (c / 1000) / (r * w / 1e9) }'
}
