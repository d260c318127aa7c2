/*
 * dcmi_power.c: an ipmi_sim `loadlib` module that answers the DCMI power commands (group extension 0xDC of
 * NetFn 0x2C: 0x01 Get DCMI Capabilities, 0x02 Get Power Reading) from a script file read at every request,
 * so a test can script readings and the faults of real BMCs while the simulator runs.
 *
 *   loadlib "/path/dcmi_power.so" "script=/path/bmc.script"
 *
 * Script lines (`key value`, any order, missing keys take the defaults):
 *   watts N       current power, W (default 0)
 *   min/max/avg N the statistics fields, W (default: watts)
 *   timestamp N   the reading's BMC timestamp, s since the epoch (default: now). A fixed value = a stale BMC.
 *   delay_ms N    sleep N ms before answering (a slow BMC; ipmi_sim is single-threaded, so it stalls it whole)
 *   active 0|1    "power measurement active" bit of the reading state (default 1)
 *   dcmi 0        answer 0xC1 Invalid Command to every DCMI request (a BMC without DCMI)
 * A missing or unreadable script answers 0xFF (unspecified error).
 * Built by the tests: gcc -shared -fPIC -o dcmi_power.so dcmi_power.c (headers from libopenipmi-dev).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stdint.h>
#include <OpenIPMI/serv.h>
#include <OpenIPMI/mcserv.h>

#define DCMI_GROUP 0xDC

static char script_path[4096];

struct script {
    long watts, min, max, avg, timestamp, delay_ms, active, dcmi;
    int has_min, has_max, has_avg, has_ts;
};

static int read_script(struct script *s)
{
    FILE *f = fopen(script_path, "r");
    char key[64];
    long v;
    memset(s, 0, sizeof *s);
    s->active = 1;
    s->dcmi = 1;
    if (!f) return -1;
    while (fscanf(f, "%63s %ld", key, &v) == 2) {
        if (!strcmp(key, "watts")) s->watts = v;
        else if (!strcmp(key, "min")) { s->min = v; s->has_min = 1; }
        else if (!strcmp(key, "max")) { s->max = v; s->has_max = 1; }
        else if (!strcmp(key, "avg")) { s->avg = v; s->has_avg = 1; }
        else if (!strcmp(key, "timestamp")) { s->timestamp = v; s->has_ts = 1; }
        else if (!strcmp(key, "delay_ms")) s->delay_ms = v;
        else if (!strcmp(key, "active")) s->active = v;
        else if (!strcmp(key, "dcmi")) s->dcmi = v;
    }
    fclose(f);
    if (!s->has_min) s->min = s->watts;
    if (!s->has_max) s->max = s->watts;
    if (!s->has_avg) s->avg = s->watts;
    if (!s->has_ts) s->timestamp = (long)time(NULL);
    return 0;
}

static void put16(unsigned char *p, long v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put32(unsigned char *p, long v) { put16(p, v & 0xffff); put16(p + 2, (v >> 16) & 0xffff); }

static void handle_dcmi(lmc_data_t *mc, msg_t *msg, unsigned char *rdata, unsigned int *rdata_len, void *cb_data)
{
    struct script s;
    (void)mc; (void)cb_data;
    rdata[1] = DCMI_GROUP;
    if (read_script(&s) != 0) { rdata[0] = 0xFF; *rdata_len = 2; return; }
    if (s.delay_ms > 0) usleep((useconds_t)s.delay_ms * 1000);
    if (!s.dcmi) { rdata[0] = 0xC1; *rdata_len = 1; return; }
    switch (msg->cmd) {
    case 0x01: /* Get DCMI Capabilities, parameter 1: supported capabilities (power management) */
        rdata[0] = 0; rdata[2] = 1; rdata[3] = 5; rdata[4] = 2;
        rdata[5] = 0; rdata[6] = 0x01; rdata[7] = 0; rdata[8] = 0;
        *rdata_len = 9;
        return;
    case 0x02: /* Get Power Reading, mode 1 (system power statistics) */
        if (msg->len < 4) { rdata[0] = 0xC7; *rdata_len = 1; return; }
        rdata[0] = 0;
        put16(rdata + 2, s.watts);
        put16(rdata + 4, s.min);
        put16(rdata + 6, s.max);
        put16(rdata + 8, s.avg);
        put32(rdata + 10, s.timestamp);
        put32(rdata + 14, 1000);               /* statistics reporting period, ms */
        rdata[18] = s.active ? 0x40 : 0x00;    /* bit 6: power measurement active */
        *rdata_len = 19;
        return;
    default:
        rdata[0] = 0xC1; *rdata_len = 1;
        return;
    }
}

int ipmi_sim_module_init(sys_data_t *sys, const char *initstr)
{
    (void)sys;
    const char *p = initstr ? strstr(initstr, "script=") : NULL;
    if (!p) { fprintf(stderr, "dcmi_power: loadlib needs \"script=PATH\"\n"); return 22; }
    snprintf(script_path, sizeof script_path, "%s", p + 7);
    char *end = strpbrk(script_path, " \t\n");
    if (end) *end = 0;
    ipmi_emu_register_group_extension_handler(DCMI_GROUP, handle_dcmi, NULL);
    return 0;
}
