/*
 * Counter advancer for `make bench`: makes a generated powercap tree behave like a busy node, so the samples
 * (and so the Parquet compression figure) look like real RAPL data rather than constant zeros.
 *
 * Each FILE:WATTS counter gains WATTS x dt of energy per update, with +-5 % uniform noise per update (a
 * loaded node's power fluctuates), quantised to the RAPL energy unit 2^-14 J = 61.035 µJ (the usual ESU,
 * docs/implementation-notes.md) and reported in µJ, as the kernel does (energy_uj = units x 61.035, rounded down). Values are
 * written in place, zero-padded to 20 digits + '\n' with one pwrite at offset 0 (same inode, as sysfs; same
 * format as tests/Alumet.Hpc.Tests/Fakes/PowercapTree.cs), so a reader never sees a short file.
 * Counters wrap at max_energy_range_uj like the real ones.
 *
 * Rate: default 1000 Hz because real RAPL counters refresh about every 1 ms, so at 1 kHz every read sees a new
 * value (at 100 Hz nine reads in ten would see no change and compress unrealistically well). The cost is one
 * short wake-up per ms (~1-2 % of a core); the harness runs this at nice 19 so the samplers, which wake at the
 * same rate, preempt it, and it runs identically under ours and the C reader, so their ratio stays fair.
 *
 * MSR mode, FILE@OFFSET:WATTS: the counter is the 32-bit RAPL register of a generated /dev/cpu/N/msr file, written
 * as 8 little-endian bytes at the register's offset in units of 2^-14 J, wrapping at 2^32 (bench/rapl-interfaces.sh).
 *
 * cgroup mode, cpustat:FILE:CPUS: a generated cgroup v2 cpu.stat of a busy job, whose usage_usec (and user_usec)
 * grows by CPUS x dt (+-5 %), rewritten in place (fixed width) at HZ / 10: the node sampler reads it once per period,
 * and a job's CPU time that moves is what makes the per-period split do real work (bench/node.sh).
 *
 * Usage: advance HZ MAX_RANGE_UJ {FILE[@OFFSET]:WATTS | cpustat:FILE:CPUS}...   runs until SIGTERM; prints its own
 * CPU time to stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t rng = 0x9E3779B97F4A7C15ULL; /* fixed seed: the same data every run */
static double uniform(void) /* [0,1) */
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: advance HZ MAX_RANGE_UJ FILE:WATTS...\n"); return 2; }
    double hz = atof(argv[1]);
    unsigned long long max_range = strtoull(argv[2], NULL, 10);
    int n = argc - 3;
    if (hz <= 0 || n > 64 || max_range == 0) { fprintf(stderr, "advance: bad arguments\n"); return 2; }
    int fds[64];
    long long msr_offset[64]; /* -1: powercap text, -2: cgroup cpu.stat */
    double watts[64];
    double units[64]; /* energy in 2^-14 J units, fractional part kept so the mean power is exact */
    const double UJ_PER_UNIT = 1e6 / 16384.0;
    for (int i = 0; i < n; i++) {
        char *arg = argv[3 + i], *colon = strrchr(arg, ':');
        if (!colon) { fprintf(stderr, "advance: %s: expected FILE:WATTS\n", arg); return 2; }
        *colon = 0;
        watts[i] = atof(colon + 1);
        msr_offset[i] = -1;
        if (strncmp(arg, "cpustat:", 8) == 0) {
            arg += 8;
            msr_offset[i] = -2;
        } else {
            char *at = strrchr(arg, '@');
            if (at) { *at = 0; msr_offset[i] = strtoll(at + 1, NULL, 0); }
        }
        fds[i] = open(arg, O_WRONLY | O_CLOEXEC);
        if (fds[i] < 0) { fprintf(stderr, "advance: %s: %s\n", arg, strerror(errno)); return 1; }
        /* Start mid-range with distinct values, as a node that has been up for a while. */
        units[i] = (double)(((unsigned long long)(max_range * (0.3 + 0.1 * i))) % max_range) / UJ_PER_UNIT;
        if (msr_offset[i] == -2) units[i] = 1e6 * (1 + i); /* µs of CPU already used */
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);

    double dt = 1.0 / hz;
    int64_t period = (int64_t)(1e9 / hz + 0.5);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t next = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    char buf[128];
    long long updates = 0;
    while (!stop) {
        for (int i = 0; i < n; i++) {
            if (msr_offset[i] == -2) {
                if (updates % 10) continue;
                units[i] += watts[i] * 10 * dt * (0.95 + 0.10 * uniform()) * 1e6;
                unsigned long long us = (unsigned long long)units[i];
                int len = snprintf(buf, sizeof buf, "usage_usec %020llu\nuser_usec %020llu\nsystem_usec %020llu\n", us, us, 0ULL);
                if (pwrite(fds[i], buf, (size_t)len, 0) != len) { fprintf(stderr, "advance: write: %s\n", strerror(errno)); return 1; }
                continue;
            }
            units[i] += watts[i] * dt * (0.95 + 0.10 * uniform()) * 16384.0;
            if (msr_offset[i] >= 0) {
                unsigned long long reg = (unsigned long long)units[i] & 0xFFFFFFFFULL; /* little-endian host: the MSR's byte order */
                if (pwrite(fds[i], &reg, 8, msr_offset[i]) != 8) { fprintf(stderr, "advance: write: %s\n", strerror(errno)); return 1; }
                continue;
            }
            unsigned long long uj = (unsigned long long)((unsigned long long)units[i] * UJ_PER_UNIT) % (max_range + 1);
            snprintf(buf, sizeof buf, "%020llu\n", uj);
            if (pwrite(fds[i], buf, 21, 0) != 21) { fprintf(stderr, "advance: write: %s\n", strerror(errno)); return 1; }
        }
        updates++;
        next += period;
        struct timespec req = { next / 1000000000LL, next % 1000000000LL };
        while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL) == EINTR) {}
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "advance_updates=%lld\nadvance_cpu_ns=%lld\n", updates,
            (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
            + (long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL);
    return 0;
}
