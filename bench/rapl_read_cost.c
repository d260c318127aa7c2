/*
 * Cost of one counter read per RAPL interface path, for bench/rapl-interfaces.sh: what the per-tick figures cannot
 * separate. Pinned to CPU 0, N reads of each, CPU time and wall time per read:
 *   perf, event on CPU 0 / on CPU 1   read(2) of a software-PMU counter (CPU_CLOCK): the perf_events read path; a
 *                                     counter bound to another CPU is read there through an inter-processor call
 *   cpuid device, CPU 0 / CPU 1       pread of /dev/cpu/N/cpuid (when present): the same cross-CPU call
 *                                     (smp_call_function_single) the msr driver and powercap make for every RAPL read
 *                                     on real hardware, which the generated MSR and powercap files do not make
 *   8-byte pread, text pread          the generated MSR file and powercap file reads
 * Usage: rapl_read_cost DIR [N]   (DIR: a scratch directory for the two files)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double ns(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

static int perf_on(int cpu)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = PERF_TYPE_SOFTWARE;
    a.config = PERF_COUNT_SW_CPU_CLOCK;
    return (int)syscall(SYS_perf_event_open, &a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
}

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: rapl_read_cost DIR [N]\n"); return 2; }
    int n = argc > 2 ? atoi(argv[2]) : 20000;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
    char path[4096];
    snprintf(path, sizeof path, "%s/msr", argv[1]);
    int msr = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    unsigned long long reg = 12345678;
    if (msr < 0 || pwrite(msr, &reg, 8, 0x611) != 8) { perror(path); return 1; }
    snprintf(path, sizeof path, "%s/energy_uj", argv[1]);
    int txt = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (txt < 0 || pwrite(txt, "00000000000123456789\n", 21, 0) != 21) { perror(path); return 1; }
    struct { const char *name; int fd; int kind; } k[] = {
        { "perf, event on CPU 0 (the reader's)", perf_on(0), 0 },
        { "perf, event on CPU 1 (cross-CPU)", perf_on(1), 0 },
        { "cpuid device, CPU 0 (msr driver path)", open("/dev/cpu/0/cpuid", O_RDONLY | O_CLOEXEC), 1 },
        { "cpuid device, CPU 1 (msr driver path)", open("/dev/cpu/1/cpuid", O_RDONLY | O_CLOEXEC), 1 },
        { "8-byte pread (generated MSR file)", msr, 2 },
        { "text pread + strtoull (powercap file)", txt, 3 },
    };
    char buf[32];
    unsigned long long v, sink = 0;
    for (unsigned i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (k[i].fd < 0) { printf("%-40s not available here\n", k[i].name); continue; }
        double w0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_THREAD_CPUTIME_ID);
        for (int j = 0; j < n; j++) {
            switch (k[i].kind) {
            case 0: if (read(k[i].fd, &v, 8) == 8) sink += v; break;
            case 1: if (pread(k[i].fd, buf, 16, 0) == 16) sink += (unsigned char)buf[0]; break;
            case 2: if (pread(k[i].fd, &v, 8, 0x611) == 8) sink += v & 0xFFFFFFFFULL; break;
            default: { ssize_t r = pread(k[i].fd, buf, sizeof buf - 1, 0); if (r > 0) { buf[r] = 0; sink += strtoull(buf, NULL, 10); } }
            }
        }
        printf("%-40s %9.0f ns CPU %9.0f ns wall per read\n", k[i].name, (ns(CLOCK_THREAD_CPUTIME_ID) - c0) / n, (ns(CLOCK_MONOTONIC) - w0) / n);
    }
    return sink == 42 ? 3 : 0;
}
