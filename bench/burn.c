/*
 * Known noise for `make bench` (bench/node.sh): the check that bench/noise.c sees what it should. One thread burns
 * PERCENT % of all the online CPUs in short bursts: every PERIOD_US (absolute deadlines, CLOCK_MONOTONIC) it spins
 * until its own CPU clock has advanced by PERCENT / 100 x CPUs x PERIOD_US, then sleeps. A job on every CPU should
 * lose about PERCENT %, and noise.c's share of the CPUs (schedstat) should read PERCENT %.
 *
 * Usage: burn PERCENT PERIOD_US   runs until killed (normal scheduling, like the sampler's housekeeping).
 * Build: gcc -O2 -o burn burn.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "now_ns.h"

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    double pct = argc == 3 ? atof(argv[1]) : 0;
    long period_us = argc == 3 ? atol(argv[2]) : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (pct <= 0 || period_us <= 0 || ncpu < 1 || pct / 100.0 * (double)ncpu >= 1) {
        fprintf(stderr, "usage: burn PERCENT PERIOD_US  (PERCENT of all CPUs, below one CPU)\n");
        return 2;
    }
    int64_t burst = (int64_t)(pct / 100.0 * (double)ncpu * (double)period_us * 1000.0), period = period_us * 1000LL;
    volatile uint64_t x = 1;
    for (int64_t next = now_ns() + period;; next += period) {
        int64_t until = cpu_ns() + burst;
        while (cpu_ns() < until)
            for (int k = 0; k < 256; k++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t now = now_ns();
        if (next <= now) next = now + period; /* skip missed bursts, as the tickers do */
        struct timespec req = { next / 1000000000LL, next % 1000000000LL };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL) == EINTR) {}
    }
}
