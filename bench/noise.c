/*
 * OS-noise probe for `make bench` (bench/node.sh): what a CPU-bound job loses to a process on its node (the
 * sampler, the C reader, bench/burn.c), resolved well below the window-to-window spread of a shared machine.
 *
 * One busy thread per online CPU, each pinned to its CPU, does fixed work units (1024 steps of a 64-bit LCG, about
 * a microsecond) and counts them. Meanwhile the main thread runs the TARGET processes in alternate windows (SIGCONT)
 * and stops them in the others (SIGSTOP: no wake-up, no thread runs), for SECONDS in all:
 *   - windows come in pairs, one with the targets running (on) and one with them stopped (off), in ABBA order
 *     (on/off, then off/on, ...), so that a drift of the machine's speed that is linear over two pairs cancels;
 *   - each window lasts WINDOW_MS x a pseudo-random factor in [0.75, 1.25], so that no periodic activity (a sampler's
 *     1 s snapshot, other load) locks onto the windows' phase;
 *   - the first GUARD_MS of every window is not counted: a target stopped by SIGSTOP does, once continued, what fell
 *     due while it was stopped (the node sampler's snapshot, the tick it missed), and finishes what the stop cut
 *     short; that catch-up falls in the guard, and the counted part of an "on" window sees the target at its own
 *     steady rate (the deadlines it missed are skipped, its schedule is kept);
 *   - per counted part: the work rate (units / wall ns, all threads), the busy threads' own CPU time
 *     (pthread_getcpuclockid), and the targets' CPU time (every thread's /proc/PID/task/TID/schedstat, ns).
 * Per pair: slowdown = 1 - rate(on) / rate(off); the figure is the mean over the pairs with its standard error (a
 * pair is independent of the next: the machine's slow drift is in both of its windows). Beside it, over the same
 * counted parts, the targets' CPU time as a share of all the CPUs: the part of the slowdown that is certain (a job on
 * every CPU loses at least the CPU the targets take), measured exactly rather than estimated. With no target that is
 * running anything (a sleeping process), the same windows measure the method's own null: mean ~0, its CI covering 0.
 * A third figure, per pair, is what a job alone on the node would lose: 1 - (1 - share(on)) / (1 - share(off)) x (1 -
 * efficiency loss), the efficiency being units per busy-thread CPU ns (interrupts, switches and cache misses the targets
 * cause are charged to the job's threads' CPU time: no IRQ time accounting assumed). It does not move with how much CPU
 * other load leaves the job, only with what other load does to its caches, so it resolves more on a shared machine.
 *
 * Paired comparison (--vs): with a second group of processes after --vs, the "off" windows run that group instead of
 * nothing (the first group stopped, the second continued; in the "on" windows the reverse), so every figure above is
 * the first group's loss beyond the second's, measured in the same seconds, pair by pair: "ours - C" without the drift
 * between two rows measured one after the other (bench/node.sh). Both groups run the whole time, each stopped in half
 * the windows; share_pct is the first group's CPU share in its windows, share_off_pct the second's in its own, and
 * stopped_share_pct the CPU a stopped group still took (must be ~0).
 *
 * Usage: noise [-o PAIRS_FILE] SECONDS WINDOW_MS GUARD_MS [PID...] [--vs PID...]
 *   prints key=value lines: pairs, slowdown_pct, slowdown_se_pct (standard error of the mean over pairs), share_pct and
 *   share_se_pct (targets' CPU over all CPUs in the "on" parts, per pair), share_off_pct (the same in the "off" parts:
 *   0 unless a target did not stop), efficiency_loss_pct / _se_pct (1 - units per busy-thread CPU ns, on vs off: cache
 *   and TLB effects beside the CPU taken), model_pct / _se_pct (the job-alone figure above), window_cv_pct (spread of one window's rate: the machine's noise),
 *   counted_s, threads, units, stalled_pairs (pairs left out: a window with no work at all, the VM descheduled). PAIRS_FILE: one line per pair (slowdown %, share %, efficiency loss %, job-alone %,
 *   units/s on, units/s off). The targets are always left
 *   running (SIGCONT), also on SIGINT/SIGTERM/SIGHUP.
 * Build: gcc -O2 -pthread -o noise noise.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "now_ns.h"

struct worker {
    pthread_t thread;
    clockid_t clock;
    int cpu;
    long long units; /* written by the worker only (relaxed), read by the main thread */
    uint64_t sink;
    char pad[64];    /* each worker's counter on its own cache line */
};

static struct worker *ws;
static long nthreads;
static int stop_workers;
static pid_t *targets;
static int *group;      /* 0: the targets (running in "on" windows); 1: the --vs group (running in "off" windows) */
static int ntargets;
static int vs; /* a --vs group was given */
static pthread_barrier_t start;

static void *work(void *arg)
{
    struct worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    pthread_getcpuclockid(pthread_self(), &w->clock);
    pthread_barrier_wait(&start);
    uint64_t x = (uint64_t)w->cpu + 1;
    long long n = 0;
    while (!__atomic_load_n(&stop_workers, __ATOMIC_RELAXED)) {
        for (int k = 0; k < 1024; k++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        __atomic_store_n(&w->units, ++n, __ATOMIC_RELAXED);
    }
    w->sink = x;
    return NULL;
}

static void signal_targets(int sig)
{
    for (int i = 0; i < ntargets; i++) kill(targets[i], sig);
}

/* The window's processes: stop the group that must not run first, so the two groups never run together. */
static void switch_to(int on)
{
    for (int i = 0; i < ntargets; i++) if (group[i] == on) kill(targets[i], SIGSTOP);
    for (int i = 0; i < ntargets; i++) if (group[i] != on) kill(targets[i], SIGCONT);
}

static void on_signal(int sig)
{
    signal_targets(SIGCONT); /* never leave a sampler stopped */
    signal(sig, SIG_DFL);
    raise(sig);
}

static int64_t thread_cpu_ns(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0) return 0;
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* On-CPU ns of every thread of the targets: the first field of /proc/PID/task/TID/schedstat. */
static void targets_cpu_ns(int64_t sum[2])
{
    char path[96], buf[128];
    sum[0] = sum[1] = 0;
    for (int i = 0; i < ntargets; i++) {
        snprintf(path, sizeof path, "/proc/%d/task", (int)targets[i]);
        DIR *d = opendir(path);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "/proc/%d/task/%.20s/schedstat", (int)targets[i], e->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            if (fgets(buf, sizeof buf, f)) sum[group[i]] += strtoll(buf, NULL, 10);
            fclose(f);
        }
        closedir(d);
    }
}

struct sample { int64_t t, units, busy_cpu, target_cpu[2]; };

static void take(struct sample *s)
{
    targets_cpu_ns(s->target_cpu);
    s->busy_cpu = 0;
    s->units = 0;
    for (long i = 0; i < nthreads; i++) {
        s->units += __atomic_load_n(&ws[i].units, __ATOMIC_RELAXED);
        s->busy_cpu += thread_cpu_ns(ws[i].clock);
    }
    s->t = now_ns();
}

static void sleep_until(int64_t t)
{
    struct timespec req = { t / 1000000000LL, t % 1000000000LL };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL) == EINTR) {}
}

/* One window's counted part: share = CPU of the group that runs in it, stopped = CPU of the other (~0). */
struct part { double rate, eff, share, stopped; };

static struct part window(int on, int64_t length_ns, int64_t guard_ns, double *counted_s)
{
    int64_t t0 = now_ns();
    switch_to(on);
    struct sample a, b;
    sleep_until(t0 + guard_ns);
    take(&a);
    sleep_until(t0 + length_ns);
    take(&b);
    double dt = (double)(b.t - a.t), du = (double)(b.units - a.units), dc = (double)(b.busy_cpu - a.busy_cpu);
    *counted_s += dt / 1e9;
    int run = on ? 0 : 1; /* without --vs, group 1 is empty: an "off" window's share is what the stopped targets took */
    double cpu_run = (double)(b.target_cpu[run] - a.target_cpu[run]), cpu_stopped = (double)(b.target_cpu[!run] - a.target_cpu[!run]);
    if (!on && !vs) { cpu_run = cpu_stopped; cpu_stopped = 0; }
    struct part p = { du / dt, dc > 0 ? du / dc : 0, 100.0 * cpu_run / (dt * (double)nthreads), 100.0 * cpu_stopped / (dt * (double)nthreads) };
    return p;
}

struct stat_acc { double n, sum, sumsq; };
static void acc(struct stat_acc *s, double v) { s->n++; s->sum += v; s->sumsq += v * v; }
static double mean(const struct stat_acc *s) { return s->n > 0 ? s->sum / s->n : 0; }
static double se(const struct stat_acc *s)
{
    if (s->n < 2) return 0;
    double m = mean(s), var = (s->sumsq - s->n * m * m) / (s->n - 1);
    return var > 0 ? sqrt(var / s->n) : 0;
}

int main(int argc, char **argv)
{
    const char *pairs_file = NULL;
    if (argc > 2 && strcmp(argv[1], "-o") == 0) { pairs_file = argv[2]; argv += 2; argc -= 2; }
    if (argc < 4 || atof(argv[1]) <= 0 || atof(argv[2]) <= 0 || atof(argv[3]) < 0 || atof(argv[3]) >= 0.75 * atof(argv[2])) {
        fprintf(stderr, "usage: noise [-o PAIRS_FILE] SECONDS WINDOW_MS GUARD_MS [PID...] [--vs PID...]  (GUARD_MS < 0.75 x WINDOW_MS)\n");
        return 2;
    }
    double seconds = atof(argv[1]);
    int64_t window_ns = (int64_t)(atof(argv[2]) * 1e6), guard_ns = (int64_t)(atof(argv[3]) * 1e6);
    targets = calloc((size_t)argc, sizeof *targets);
    group = calloc((size_t)argc, sizeof *group);
    int in_vs = 0;
    for (int a = 4; a < argc; a++) {
        if (strcmp(argv[a], "--vs") == 0) { in_vs = vs = 1; continue; }
        targets[ntargets] = (pid_t)atoi(argv[a]);
        group[ntargets] = in_vs;
        if (targets[ntargets] <= 0 || kill(targets[ntargets], 0) != 0) { fprintf(stderr, "noise: no process %s\n", argv[a]); return 2; }
        ntargets++;
    }
    int groups[2] = { 0, 0 };
    for (int i = 0; i < ntargets; i++) groups[group[i]]++;
    if (vs && (groups[0] == 0 || groups[1] == 0)) { fprintf(stderr, "noise: --vs needs processes on both sides\n"); return 2; }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    FILE *pf = NULL;
    if (pairs_file && !(pf = fopen(pairs_file, "w"))) { perror(pairs_file); return 1; }

    nthreads = sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1 || nthreads > 1024) nthreads = 1;
    ws = calloc((size_t)nthreads, sizeof *ws);
    if (!ws) return 1;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1);
    for (long i = 0; i < nthreads; i++) {
        ws[i].cpu = (int)i;
        if (pthread_create(&ws[i].thread, NULL, work, &ws[i]) != 0) { perror("noise: pthread_create"); return 1; }
    }
    pthread_barrier_wait(&start);

    long pairs = (long)(seconds * 1e9 / (2.0 * (double)window_ns));
    if (pairs < 2) pairs = 2;
    struct stat_acc slow = { 0 }, share = { 0 }, eff = { 0 }, model = { 0 }, rates = { 0 };
    double share_off = 0, counted_s = 0, counted_off_s = 0, stopped = 0;
    long stalled = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (long k = 0; k < pairs; k++) {
        struct part on = { 0 }, off = { 0 };
        for (int half = 0; half < 2; half++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            double f = 0.75 + 0.5 * (double)(rng >> 11) / 9007199254740992.0;
            int is_on = (k % 2 == 0) == (half == 0); /* ABBA: on/off, off/on, ... */
            double before = counted_s;
            struct part p = window(is_on, (int64_t)((double)window_ns * f), guard_ns, &counted_s);
            if (p.stopped > stopped) stopped = p.stopped;
            if (is_on) on = p;
            else { off = p; share_off += p.share * (counted_s - before); counted_off_s += counted_s - before; }
        }
        /* A window in which the workers did no work at all is the VM descheduled for the whole window, not the targets:
           its pair has no ratio (it printed -inf and took the round's mean with it). Counted and said, never averaged. */
        if (on.rate <= 0 || off.rate <= 0) { stalled++; continue; }
        double s = 100.0 * (1.0 - on.rate / off.rate), e = on.eff > 0 && off.eff > 0 ? 100.0 * (1.0 - on.eff / off.eff) : 0;
        /* What a job alone on the node would lose: the CPU the targets take, and on what is left, the work per CPU ns
           their runs cost (interrupts, switches, caches: charged to the job's threads' own CPU time). */
        double m = 100.0 * (1.0 - (1.0 - on.share / 100.0) / (1.0 - off.share / 100.0) * (1.0 - e / 100.0));
        acc(&slow, s);
        acc(&share, on.share);
        acc(&eff, e);
        acc(&model, m);
        acc(&rates, on.rate);
        acc(&rates, off.rate);
        if (pf) fprintf(pf, "%.4f %.4f %.4f %.4f %.0f %.0f\n", s, on.share, e, m, on.rate * 1e9, off.rate * 1e9);
    }
    signal_targets(SIGCONT);
    __atomic_store_n(&stop_workers, 1, __ATOMIC_RELAXED);
    long long units = 0;
    uint64_t sink = 0;
    for (long i = 0; i < nthreads; i++) {
        pthread_join(ws[i].thread, NULL);
        units += ws[i].units;
        sink ^= ws[i].sink;
    }
    if (pf) fclose(pf);
    printf("vs=%d\nstopped_share_pct=%.4f\nstalled_pairs=%ld\n", vs, stopped, stalled);
    printf("pairs=%ld\nslowdown_pct=%.4f\nslowdown_se_pct=%.4f\nshare_pct=%.4f\nshare_se_pct=%.4f\nshare_off_pct=%.4f\n"
           "efficiency_loss_pct=%.4f\nefficiency_loss_se_pct=%.4f\nmodel_pct=%.4f\nmodel_se_pct=%.4f\nwindow_cv_pct=%.3f\ncounted_s=%.2f\nthreads=%ld\nunits=%lld\nsink=%llu\n",
           pairs, mean(&slow), se(&slow), mean(&share), se(&share), counted_off_s > 0 ? share_off / counted_off_s : 0,
           mean(&eff), se(&eff), mean(&model), se(&model), mean(&rates) > 0 ? 100.0 * se(&rates) * sqrt(rates.n) / mean(&rates) : 0, counted_s,
           nthreads, units, (unsigned long long)sink);
    return 0;
}
