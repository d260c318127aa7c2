/* bmc_read.c HOST:PORT USER PASSWORD N: the BMC source's mechanism alone, from C. One IPMI 2.0 session through
 * libfreeipmi (opened once, as the source keeps it), then N DCMI Get Power Reading requests (ipmi_cmd_raw). Prints
 * the session open time, wall time and CPU time per request (getrusage), and the last reading. Built by bench/bmc.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/resource.h>
#include <freeipmi/freeipmi.h>

static double now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static double cpu_ms(void) { struct rusage r; getrusage(RUSAGE_SELF, &r);
    return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3; }

int main(int argc, char **argv)
{
    if (argc < 5) { fprintf(stderr, "usage: bmc_read HOST:PORT USER PASSWORD N\n"); return 2; }
    int n = atoi(argv[4]);
    ipmi_ctx_t c = ipmi_ctx_create();
    double t0 = now_ms();
    /* privilege admin (ipmi_sim wants it for group extensions), cipher suite 3, 1 s timeout, open-session workaround */
    if (ipmi_ctx_open_outofband_2_0(c, argv[1], argv[2], argv[3], NULL, 0, 4, 3, 1000, 250, 0x10, 0) < 0) {
        fprintf(stderr, "bmc_read: %s\n", ipmi_ctx_errormsg(c)); return 1; }
    double open_ms = now_ms() - t0;
    unsigned char rq[] = { 0x02, 0xdc, 0x01, 0x00, 0x00 }, rs[64];
    int w = -1, got = 0;
    double w0 = now_ms(), c0 = cpu_ms();
    for (int i = 0; i < n; i++) {
        int len = ipmi_cmd_raw(c, 0, 0x2c, rq, sizeof rq, rs, sizeof rs);
        if (len >= 5 && rs[1] == 0) { w = rs[3] | rs[4] << 8; got++; }
    }
    double wall = (now_ms() - w0) / n, cpu = (cpu_ms() - c0) / n;
    printf("open_ms %.2f wall_ms %.3f cpu_ms %.3f ok %d/%d watts %d\n", open_ms, wall, cpu, got, n, w);
    ipmi_ctx_close(c); ipmi_ctx_destroy(c);
    return got == n ? 0 : 1;
}
