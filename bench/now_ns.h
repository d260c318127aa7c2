/* The bench programs' one clock: CLOCK_MONOTONIC in ns (the sampler's Clock.MonotonicNs, and ALUMET_BENCH_T0_NS). */
#ifndef ALUMET_BENCH_NOW_NS_H
#define ALUMET_BENCH_NOW_NS_H
#include <stdint.h>
#include <time.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
#endif
