/*
 * Reference reader for `make bench`: the least a program can do to read the same powercap counters at the
 * same rate as the Alumet.Hpc sampler, so "ours / C" says what the managed sampler costs on top.
 *
 * It does what the sampler's tick thread does (Sampling/Ticker.cs, Sources/Rapl/RaplSource.cs) and nothing
 * else: every energy_uj opened once, one thread, PR_SET_TIMERSLACK 1, clock_nanosleep(CLOCK_MONOTONIC,
 * TIMER_ABSTIME) on absolute deadlines, missed deadlines skipped and counted (same rule as Ticker.WaitNext),
 * then pread + strtoull of every file per tick. Lateness = read of CLOCK_MONOTONIC after the wake-up minus the
 * deadline, into the same 1 µs histogram as Sampling/LatencyHistogram.cs (percentile = upper bucket edge).
 * No storage, no attribution, no spool: a floor, not an equivalent program.
 *
 * Usage: c_reader STATS_FILE HZ ITEM... [--period K ITEM...]   runs until SIGTERM/SIGINT, then writes STATS_FILE
 * (key=value lines). The ITEMs after --period K are read once every K ticks (and at the prime), as the node sampler
 * reads /proc/stat and every job's cgroup once per attribution period (Jobs/NodeSampler.cs); K = 1 with HZ = 1 is
 * the node sampler at its defaults (no tick thread, one snapshot per second).
 * An ITEM is what one RAPL interface reads per counter (bench/rapl-interfaces.sh uses all three), or a period read:
 *   FILE                    powercap: pread of the decimal text + strtoull (Sources/Rapl/RaplSource.cs)
 *   msr:FILE:OFFSET         msr: 8-byte pread at the register's offset, low 32 bits (Sources/Rapl/MsrSource.cs)
 *   perf:TYPE:CONFIG:CPU    perf_events: perf_event_open once, then an 8-byte read per tick (Sources/Rapl/PerfSource.cs)
 *   cgroup:FILE             a job's cgroup v2 cpu.stat, kept open: pread + the usage_usec number (Attribution/JobCpu.cs)
 *   procstat:FILE           /proc/stat, kept open: pread + the fields of the "cpu " line (Attribution/ProcStat.cs)
 * first_sample_ms: end of the first read of all files (the prime: the baseline), relative to $ALUMET_BENCH_T0_NS
 * (CLOCK_MONOTONIC at spawn); first_tick_ms: the first tick's wake-up (then its reads), on the same origin;
 * first_sample_cpu_ms: the process's CPU time (getrusage) at the prime. The sampler writes the same three keys for the
 * same reads (Sampling/SamplerStats.cs).
 * $BENCH_C_STORE = FILE[:FILE...]: also store every counter read as the sampler does at raw storage (Spool/SpoolWriter.cs):
 * a 32-byte record (wall ns, interval ns, the delta, series and flags) appended to each FILE's 16 KiB buffer, written
 * with one pwrite when full — one FILE per spool the sampler writes (2 for a job alone: the node's and its own).
 * Build: gcc -O2 -o c_reader c_reader.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/perf_event.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS 10001 /* 1 µs buckets up to 10 ms, as LatencyHistogram */

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

#include "now_ns.h"

static long long hist[BUCKETS];

static double percentile_us(long long count, double p)
{
    if (count == 0) return 0;
    double r = p / 100.0 * (double)count;
    long long rank = (long long)r, seen = 0;
    if ((double)rank < r) rank++; /* ceil without libm */
    for (int i = 0; i < BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank) return i + 1;
    }
    return BUCKETS;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: c_reader STATS_FILE HZ ITEM... [--period K ITEM...]\n");
        return 2;
    }
    const char *stats_path = argv[1];
    double hz = atof(argv[2]);
    if (hz <= 0 || hz > 10000) { fprintf(stderr, "c_reader: bad rate %s\n", argv[2]); return 2; }
    int nfiles = 0, nitems = argc - 3;
    long long period_ticks = 0; /* 0: no period items */
    int fds[64];
    int kind[64];          /* 0 text, 1 msr, 2 perf, 3 cgroup cpu.stat, 4 /proc/stat */
    long long offset[64];  /* msr register */
    int periodic[64];      /* read every period_ticks ticks, not every tick */
    int in_period = 0;
    static char big[65536]; /* /proc/stat grows with the CPU count */

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: clock_nanosleep returns EINTR and the loop sees stop */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* Same scheduling as the sampler's tick thread (tick_scheduling = "fifo"): SCHED_FIFO 1 when permitted. */
    const char *fifo = getenv("BENCH_C_FIFO");
    if (fifo && strcmp(fifo, "1") == 0) {
        struct sched_param sp = { .sched_priority = 1 };
        if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) fprintf(stderr, "c_reader: SCHED_FIFO not permitted, staying normal\n");
    }

    const char *t0s = getenv("ALUMET_BENCH_T0_NS");
    int64_t t0 = t0s ? strtoll(t0s, NULL, 10) : 0;

    for (int a = 0; a < nitems; a++) {
        char *item = argv[3 + a];
        if (strcmp(item, "--period") == 0) {
            if (a + 1 >= nitems || (period_ticks = atoll(argv[3 + a + 1])) <= 0) { fprintf(stderr, "c_reader: --period K: K ticks, K >= 1\n"); return 2; }
            in_period = 1;
            a++;
            continue;
        }
        if (nfiles >= 64) { fprintf(stderr, "c_reader: at most 64 items\n"); return 2; }
        int i = nfiles++;
        kind[i] = 0;
        offset[i] = 0;
        periodic[i] = in_period;
        if (strncmp(item, "cgroup:", 7) == 0) { kind[i] = 3; item += 7; }
        else if (strncmp(item, "procstat:", 9) == 0) { kind[i] = 4; item += 9; }
        else if (strncmp(item, "msr:", 4) == 0) {
            char *colon = strrchr(item + 4, ':');
            if (!colon) { fprintf(stderr, "c_reader: %s: expected msr:FILE:OFFSET\n", item); return 2; }
            *colon = 0;
            kind[i] = 1;
            offset[i] = strtoll(colon + 1, NULL, 0);
            item += 4;
        } else if (strncmp(item, "perf:", 5) == 0) {
            struct perf_event_attr attr;
            memset(&attr, 0, sizeof attr);
            attr.size = sizeof attr;
            int cpu = 0;
            unsigned long long config = 0;
            if (sscanf(item + 5, "%u:%lli:%d", &attr.type, &config, &cpu) != 3) { fprintf(stderr, "c_reader: %s: expected perf:TYPE:CONFIG:CPU\n", item); return 2; }
            attr.config = config;
            kind[i] = 2;
            fds[i] = (int)syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
            if (fds[i] < 0) { fprintf(stderr, "c_reader: perf_event_open %s: %s\n", item, strerror(errno)); return 1; }
            continue;
        }
        fds[i] = open(item, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) { fprintf(stderr, "c_reader: %s: %s\n", item, strerror(errno)); return 1; }
    }

    /* $BENCH_C_STORE: the spools (see the header). */
    enum { STORE_MAX = 4, STORE_BYTES = 16384 };
    int store_fd[STORE_MAX], nstore = 0;
    static unsigned char store_buf[STORE_MAX][STORE_BYTES];
    size_t store_used[STORE_MAX] = { 0 };
    long long store_off[STORE_MAX] = { 0 };
    unsigned long long last_value[64] = { 0 };
    int64_t last_read_ns = 0, wall_ns = 0, read_ns = 0;
    int storing = 0; /* not the prime: it is the baseline, stored nowhere (Sampling/MeasurementBuffer.cs Prime) */
    const char *stores = getenv("BENCH_C_STORE");
    if (stores && *stores) {
        char *list = strdup(stores);
        for (char *f = strtok(list, ":"); f && nstore < STORE_MAX; f = strtok(NULL, ":")) {
            store_fd[nstore] = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (store_fd[nstore] < 0) { fprintf(stderr, "c_reader: %s: %s\n", f, strerror(errno)); return 1; }
            nstore++;
        }
        free(list);
    }

    char buf[32];
    unsigned long long sum = 0;
    long long read_errors = 0;
    unsigned long long word;
    /* One record per read, into every spool (the sampler's SpoolRecord: 32 bytes). */
#define store_read(i, v)                                                                        \
    do {                                                                                        \
        struct { int64_t wall, interval; int64_t value; int32_t series, flags; } rec = {         \
            wall_ns, read_ns - last_read_ns, (int64_t)((v) - last_value[i]), (i), 0 };          \
        last_value[i] = (v);                                                                    \
        for (int k = 0; k < nstore && storing; k++) {                                           \
            memcpy(store_buf[k] + store_used[k], &rec, sizeof rec);                             \
            store_used[k] += sizeof rec;                                                        \
            if (store_used[k] + sizeof rec > STORE_BYTES) {                                     \
                if (pwrite(store_fd[k], store_buf[k], store_used[k], store_off[k]) > 0)         \
                    store_off[k] += (long long)store_used[k];                                   \
                store_used[k] = 0;                                                              \
            }                                                                                   \
        }                                                                                       \
    } while (0)
#define READ_ALL(all)                                                      \
    for (int i = 0; i < nfiles; i++) {                                     \
        if (periodic[i] && !(all)) continue;                               \
        if (kind[i] >= 3) {                                                \
            ssize_t m = pread(fds[i], big, sizeof big - 1, 0);             \
            if (m <= 0) { read_errors++; continue; }                       \
            big[m] = 0;                                                    \
            char *p = kind[i] == 3 ? strstr(big, "usage_usec ") : strstr(big, "cpu ");           \
            if (!p) { read_errors++; continue; }                           \
            p += kind[i] == 3 ? 11 : 4;                                    \
            if (kind[i] == 3) { sum += strtoull(p, NULL, 10); continue; }  \
            for (int f = 0; f < 10; f++) sum += strtoull(p, &p, 10);       \
            continue;                                                      \
        }                                                                  \
        if (kind[i] == 1) {                                                \
            if (pread(fds[i], &word, 8, offset[i]) != 8) read_errors++;    \
            else sum += word & 0xFFFFFFFFULL;                              \
            continue;                                                      \
        }                                                                  \
        if (kind[i] == 2) {                                                \
            if (read(fds[i], &word, 8) != 8) read_errors++;                \
            else sum += word;                                              \
            continue;                                                      \
        }                                                                  \
        ssize_t n = pread(fds[i], buf, sizeof buf - 1, 0);                 \
        if (n <= 0) { read_errors++; continue; }                           \
        buf[n] = 0;                                                        \
        unsigned long long v = strtoull(buf, NULL, 10);                    \
        sum += v;                                                          \
        if (nstore > 0) store_read(i, v);                                  \
    }

    /* Prime, as the sampler does before its first tick. */
    read_ns = now_ns();
    READ_ALL(1);
    last_read_ns = read_ns;
    storing = 1;
    int64_t first = now_ns();
    struct rusage ru_first;
    getrusage(RUSAGE_SELF, &ru_first);

    prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
    int64_t period = (int64_t)(1e9 / hz + 0.5);
    int64_t next = now_ns() + period, first_tick = 0;
    long long ticks = 0, missed = 0;
    double sum_late = 0;
    int64_t max_late = 0, last_tick = 0;

    while (!stop) {
        int64_t deadline = next;
        struct timespec req = { deadline / 1000000000LL, deadline % 1000000000LL };
        int rc;
        do {
            if (stop) break;
            rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL);
        } while (rc == EINTR);
        if (stop) break;
        next += period;
        int64_t now = now_ns();
        if (now - next > period) {
            int64_t skip = (now - next) / period;
            missed += skip;
            next += skip * period;
        }
        /* Same order as Sampler.Run: lateness read after the ticker returns, then the reads. */
        int64_t t = now_ns();
        int64_t late = t - deadline;
        if (late < 0) late = 0;
        int64_t us = late / 1000;
        hist[us >= BUCKETS ? BUCKETS - 1 : us]++;
        sum_late += (double)late;
        if (late > max_late) max_late = late;
        if (ticks == 0) first_tick = t;
        ticks++;
        last_tick = t;
        if (nstore > 0) {
            struct timespec w;
            clock_gettime(CLOCK_REALTIME, &w); /* the records' wall stamp, as the sampler's per tick */
            wall_ns = (int64_t)w.tv_sec * 1000000000LL + w.tv_nsec;
            read_ns = t;
        }
        READ_ALL(period_ticks > 0 && ticks % period_ticks == 0);
        last_read_ns = read_ns;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    FILE *f = fopen(stats_path, "w");
    if (!f) { fprintf(stderr, "c_reader: %s: %s\n", stats_path, strerror(errno)); return 1; }
    /* Same key names as the sampler's stats.json. tick_span_ns: first to last tick, rate = (ticks - 1) / span. */
    fprintf(f, "ticks=%lld\nmissed_ticks=%lld\ntick_span_ns=%lld\n", ticks, missed, (long long)(last_tick - first_tick));
    fprintf(f, "achieved_hz=%.2f\n", last_tick > first_tick ? (ticks - 1) * 1e9 / (last_tick - first_tick) : 0.0);
    fprintf(f, "lateness_p50_us=%.0f\nlateness_p99_us=%.0f\nlateness_max_us=%.1f\nlateness_mean_us=%.1f\n",
            percentile_us(ticks, 50), percentile_us(ticks, 99), max_late / 1000.0, ticks ? sum_late / ticks / 1000.0 : 0);
    fprintf(f, "first_sample_ms=%.3f\n", t0 ? (first - t0) / 1e6 : -1.0);
    fprintf(f, "first_tick_ms=%.3f\n", t0 && ticks ? (first_tick - t0) / 1e6 : -1.0);
    fprintf(f, "first_sample_cpu_ms=%.3f\n", (ru_first.ru_utime.tv_sec + ru_first.ru_stime.tv_sec) * 1e3
                                              + (ru_first.ru_utime.tv_usec + ru_first.ru_stime.tv_usec) / 1e3);
    fprintf(f, "cpu_self_ns=%lld\n", (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
                                      + (long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL);
    fprintf(f, "maxrss_self_kb=%ld\nread_errors=%lld\nchecksum=%llu\n", ru.ru_maxrss, read_errors, sum);
    fprintf(f, "period_reads=%lld\n", period_ticks > 0 ? 1 + ticks / period_ticks : 0);
    fclose(f);
    return 0;
}
