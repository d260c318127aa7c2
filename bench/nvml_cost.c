/*
 * NVML call floor for `make bench`: the cost of one nvmlDeviceGetTotalEnergyConsumption call made directly
 * from C through dlopen/dlsym, on the same library the sampler is given (the fake libnvidia-ml in CI, the
 * real driver on a GPU node). The sampler's own per-poll cost is measured from the outside by the harness;
 * this is what the library alone costs.
 *
 * Usage: nvml_cost LIBRARY CALLS   prints key=value lines (gpus, calls, ns_per_call).
 * Build: gcc -O2 -o nvml_cost nvml_cost.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int (*init_fn)(void);
typedef int (*count_fn)(unsigned int *);
typedef int (*handle_fn)(unsigned int, void **);
typedef int (*energy_fn)(void *, unsigned long long *);

#include "now_ns.h"

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: nvml_cost LIBRARY CALLS\n"); return 2; }
    long calls = atol(argv[2]);
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) { fprintf(stderr, "nvml_cost: %s\n", dlerror()); return 1; }
    init_fn init = (init_fn)dlsym(lib, "nvmlInit_v2");
    count_fn count = (count_fn)dlsym(lib, "nvmlDeviceGetCount_v2");
    handle_fn handle = (handle_fn)dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    energy_fn energy = (energy_fn)dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption");
    if (!init || !count || !handle || !energy) { fprintf(stderr, "nvml_cost: missing NVML symbols\n"); return 1; }
    unsigned int n = 0;
    if (init() != 0 || count(&n) != 0 || n == 0) { fprintf(stderr, "nvml_cost: nvmlInit/count failed or no GPU\n"); return 1; }
    void *h[64];
    if (n > 64) n = 64;
    for (unsigned int i = 0; i < n; i++)
        if (handle(i, &h[i]) != 0) { fprintf(stderr, "nvml_cost: handle %u failed\n", i); return 1; }

    unsigned long long sum = 0, e;
    for (long k = 0; k < 1000; k++) { energy(h[k % n], &e); sum += e; } /* warm up */
    int64_t t = now_ns();
    for (long k = 0; k < calls; k++) {
        if (energy(h[k % n], &e) != 0) { fprintf(stderr, "nvml_cost: energy call failed\n"); return 1; }
        sum += e;
    }
    int64_t dt = now_ns() - t;
    printf("gpus=%u\ncalls=%ld\nns_per_call=%.0f\nchecksum=%llu\n", n, calls, (double)dt / calls, sum);
    return 0;
}
