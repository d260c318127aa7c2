/*
 * Writes a job spool (meta.json + spool.bin, src/Alumet.Hpc/Spool/) shaped like a real exclusive job's, for
 * bench/parquet.sh to convert: the model of tests' TestSpools.RealRaw (measured on bench/run.sh's raw run).
 *
 *   spool_gen DIR SECONDS PERIOD_MS
 *     PERIOD_MS = 0: raw storage: 2 sockets x (package, cores, dram) node series read at 1 kHz with a jittered tick
 *       (lateness ~40 us + a few us, now and then up to 100 us), counters advanced like RAPL (an update every ~1 ms of
 *       P +- 5 % in 2^-14 J steps, read as powercap uJ; 110, 70, 12 W), once a second a snapshot read and the job's
 *       share (= node) and unattributed (0) per channel.
 *     PERIOD_MS > 0: one record per series and period (node, job, unattributed), the storage a job gets by default.
 * Prints the number of records and of counter readings (node records).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec { int64_t wall_ns, interval_ns, value; int32_t series, flags; };

static uint64_t rng = 88172645463325252ULL;
static double uniform(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (rng >> 11) * (1.0 / 9007199254740992.0); }

#define CH 6
static const char *kind[CH] = { "cpu_package", "cpu_cores", "dram", "cpu_package", "cpu_cores", "dram" };
static const char *rid[CH] = { "0", "0", "0", "1", "1", "1" };
static const double watts[CH] = { 110, 70, 12, 110, 70, 12 };

static int64_t units[CH], last_uj[CH], period_uj[CH];
static int64_t next_update = 500000, last_read = 0, period_start = 0;
static const int64_t wall0 = 1764000000000000000LL;
static long long records = 0, readings = 0;
static FILE *out;

static int64_t uj(int64_t u) { return u * 1000000 / 16384; }

static void put(int64_t wall, int64_t interval, int64_t value, int series)
{
    struct rec r = { wall / 100 * 100, interval, value, series, 0 };
    if (fwrite(&r, sizeof r, 1, out) != 1) { perror("spool_gen: write"); exit(1); }
    records++;
}

static void advance(int64_t until)
{
    for (; next_update <= until; next_update += 1000000 - 15000 + (int64_t)(uniform() * 30000))
        for (int c = 0; c < CH; c++) units[c] += llround(watts[c] * 1e-3 * (0.95 + 0.1 * uniform()) * 16384);
}

static void read_all(int64_t at)
{
    advance(at);
    for (int c = 0; c < CH; c++) {
        int64_t now = uj(units[c]), e = now - last_uj[c];
        last_uj[c] = now;
        period_uj[c] += e;
        put(wall0 + at, at - last_read, e, c);
    }
    readings += CH;
    last_read = at;
}

static void shares(void)
{
    for (int c = 0; c < CH; c++) {
        put(wall0 + last_read, last_read - period_start, period_uj[c], CH + 2 * c);
        put(wall0 + last_read, last_read - period_start, 0, CH + 2 * c + 1);
        period_uj[c] = 0;
    }
    period_start = last_read;
}

int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: spool_gen DIR SECONDS PERIOD_MS\n"); return 2; }
    const char *dir = argv[1];
    long seconds = atol(argv[2]), period_ms = atol(argv[3]);
    char path[4096];
    snprintf(path, sizeof path, "%s/meta.json", dir);
    FILE *m = fopen(path, "w");
    if (!m) { perror(path); return 1; }
    fprintf(m, "{\n  \"format_version\": 1, \"tool_version\": \"bench\", \"scheduler\": \"exec\", \"cluster\": \"bench\",\n"
               "  \"job_id\": \"1\", \"run_id\": \"bench\", \"job_name\": \"\", \"user\": \"bench\", \"uid\": 0, \"node\": \"bench\",\n"
               "  \"start_wall_ns\": %lld, \"source_hz\": { \"rapl\": %s },\n"
               "  \"storage_period_ms\": %ld, \"attribution_period_ms\": 1000, \"attribution_mode\": \"exclusive\",\n"
               "  \"perimeter\": \"bench\", \"estimate_model\": \"\",\n  \"series\": [\n",
            (long long)wall0, period_ms == 0 ? "1000" : "1", period_ms);
    for (int s = 0; s < 3 * CH; s++) {
        int c = s < CH ? s : (s - CH) / 2;
        const char *consumer = s < CH ? "node" : (s - CH) % 2 == 0 ? "job:1" : "unattributed";
        fprintf(m, "    { \"consumer\": \"%s\", \"resource_kind\": \"%s\", \"resource_id\": \"%s\", \"interface\": \"powercap\", "
                   "\"joules_per_unit\": 1E-06, \"label\": \"%s-%s\" }%s\n", consumer, kind[c], rid[c], kind[c], rid[c], s + 1 < 3 * CH ? "," : "");
    }
    fprintf(m, "  ]\n}\n");
    if (fclose(m) != 0) { perror(path); return 1; }
    snprintf(path, sizeof path, "%s/spool.bin", dir);
    out = fopen(path, "w");
    if (!out) { perror(path); return 1; }
    if (period_ms == 0) {
        for (long tick = 1; tick <= seconds * 1000; tick++) {
            int64_t late = 40000 + (int64_t)(-6000 * log(1 - uniform())) + (uniform() < 0.025 ? 20000 + (int64_t)(uniform() * 80000) : 0);
            read_all(tick * 1000000 + late);
            if (tick % 1000 != 0) continue;
            read_all(last_read + 5000 + (int64_t)(uniform() * 45000)); /* the period's snapshot */
            shares();
        }
    } else {
        for (long p = 1; p <= seconds * 1000 / period_ms; p++) {
            read_all(p * period_ms * 1000000 + 40000 + (int64_t)(-6000 * log(1 - uniform())));
            shares();
        }
    }
    if (fclose(out) != 0) { perror(path); return 1; }
    printf("records=%lld readings=%lld\n", records, readings);
    return 0;
}
