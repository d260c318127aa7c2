/*
 * OS-noise probe for `make bench` (bench/node.sh): what a CPU-bound job loses to a sampler on its node.
 *
 * One busy thread per online CPU, each pinned to its CPU, does fixed work units (1024 steps of a 64-bit LCG, about
 * a microsecond) for SECONDS of CLOCK_MONOTONIC, counting the units it completes: a fixed-time-quantum probe, so
 * with the sampler running the job completes fewer units, and 1 - units(with) / units(without) is its slowdown.
 * Each thread also sums its detours, the gaps between two consecutive units longer than DETOUR_NS (the thread was
 * off its CPU: preempted by another thread, an interrupt, a page fault), as a second view of the same loss.
 *
 * Usage: noise SECONDS   prints units=N (all threads), detour_ns=N (all threads), threads=N, window_ns=N.
 * Build: gcc -O2 -pthread -o noise noise.c
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define DETOUR_NS 5000 /* a unit takes ~1 µs: a gap 5x longer is time the thread did not run */

#include "now_ns.h"

struct worker {
    pthread_t thread;
    int cpu;
    int64_t end;
    long long units;
    long long detour_ns;
    uint64_t sink;
};

static pthread_barrier_t start;

static void *work(void *arg)
{
    struct worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    pthread_barrier_wait(&start);
    uint64_t x = (uint64_t)w->cpu + 1;
    int64_t prev = now_ns();
    while (prev < w->end) {
        for (int k = 0; k < 1024; k++) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t t = now_ns();
        if (t - prev > DETOUR_NS) w->detour_ns += t - prev;
        prev = t;
        w->units++;
    }
    w->sink = x;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2 || atof(argv[1]) <= 0) { fprintf(stderr, "usage: noise SECONDS\n"); return 2; }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n > 1024) n = 1;
    struct worker *ws = calloc((size_t)n, sizeof *ws);
    if (!ws) return 1;
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (long i = 0; i < n; i++) {
        ws[i].cpu = (int)i;
        if (pthread_create(&ws[i].thread, NULL, work, &ws[i]) != 0) { perror("noise: pthread_create"); return 1; }
    }
    int64_t t0 = now_ns() + 1000000; /* every thread pinned before the clock starts */
    int64_t end = t0 + (int64_t)(atof(argv[1]) * 1e9);
    for (long i = 0; i < n; i++) ws[i].end = end;
    struct timespec req = { t0 / 1000000000LL, t0 % 1000000000LL };
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL);
    pthread_barrier_wait(&start);
    long long units = 0, detour = 0;
    uint64_t sink = 0;
    for (long i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
        units += ws[i].units;
        detour += ws[i].detour_ns;
        sink ^= ws[i].sink;
    }
    printf("units=%lld\ndetour_ns=%lld\nthreads=%ld\nwindow_ns=%lld\nsink=%llu\n", units, detour, n, (long long)(end - t0),
           (unsigned long long)sink);
    return 0;
}
