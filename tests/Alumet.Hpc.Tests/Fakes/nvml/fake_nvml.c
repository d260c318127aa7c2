/*
 * Fake libnvidia-ml.so.1 for tests (this machine has no GPU).
 * Build: gcc -shared -fPIC -O2 -o <dir>/libnvidia-ml.so.1 fake_nvml.c
 *
 * Implements only the subset Alumet.Hpc binds (Sources/Nvml/NvmlLibrary.cs), with the public
 * NVML signatures and struct layouts. Behaviour is scripted from a text file read at nvmlInit_v2:
 *   1. "<directory of this .so>/fake_nvml.script" if it exists (lets parallel tests each load
 *      their own copy of the library with their own script, without a process-wide variable);
 *   2. else the file named by the environment variable FAKE_NVML_SCRIPT;
 *   3. else no script: nvmlInit_v2 succeeds with 0 devices.
 *
 * Script lines ('#' starts a comment):
 *   init <rc>                      nvmlInit_v2 returns rc (e.g. 9 = NVML_ERROR_DRIVER_NOT_LOADED)
 *   count <n>                      device count (default: highest "dev" index + 1)
 *   dev <i> uuid <text>            nvmlDeviceGetUUID
 *   dev <i> bus_id <text>          nvmlPciInfo_t.busId (e.g. 00000000:3B:00.0); domain/bus/device parsed from it
 *   dev <i> name <text...>         nvmlDeviceGetName (rest of the line)
 *   dev <i> minor <n>              nvmlDeviceGetMinorNumber (/dev/nvidia<n>)
 *   dev <i> mig <0|1|reading>      nvmlDeviceGetMigMode current mode (default: not supported)
 *   dev <i> handle <reading>       nvmlDeviceGetHandleByIndex_v2 fails when the reading is err:N
 *   dev <i> identity <reading>     UUID/PCI/name queries fail when the reading is err:N
 *   dev <i> energy <reading>       nvmlDeviceGetTotalEnergyConsumption, mJ
 *   dev <i> energy_rate_mw <n>     energy advances by n mW x (CLOCK_MONOTONIC since init) on top of a constant
 *   dev <i> energy_line <path>     energy is a line of the clock that the test sets: the file holds "<mJ> <t0> <mW>"
 *                                  and each call returns mJ + mW x (CLOCK_MONOTONIC now - t0 ns), computed on the
 *                                  caller's thread at the call, so no test thread's delay on a loaded machine bends it
 *                                  (replaces energy and energy_rate_mw; a relative path is the script directory's)
 *   dev <i> instant <reading>      field NVML_FI_DEV_POWER_INSTANT (186), mW, valueType unsigned int
 *   dev <i> power <reading>        nvmlDeviceGetPowerUsage, mW
 * A <reading> is: a number (constant), "unsupported" (NVML_ERROR_NOT_SUPPORTED), "err:<rc>",
 * or "file:<path>": the file is read at every call and holds a number or "err:<rc>" or "unsupported",
 * so a test sets exact values between two reads. A relative path is relative to the script's directory.
 * Defaults: energy 0, instant and power unsupported, mig unsupported, handle and identity succeed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef int nvmlReturn_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NO_PERMISSION = 4,
    NVML_ERROR_ALREADY_INITIALIZED = 5,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_INSUFFICIENT_POWER = 8,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_TIMEOUT = 10,
    NVML_ERROR_IRQ_ISSUE = 11,
    NVML_ERROR_LIBRARY_NOT_FOUND = 12,
    NVML_ERROR_FUNCTION_NOT_FOUND = 13,
    NVML_ERROR_CORRUPTED_INFOROM = 14,
    NVML_ERROR_GPU_IS_LOST = 15,
    NVML_ERROR_RESET_REQUIRED = 16,
    NVML_ERROR_OPERATING_SYSTEM = 17,
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
    NVML_ERROR_IN_USE = 19,
    NVML_ERROR_MEMORY = 20,
    NVML_ERROR_NO_DATA = 21,
    NVML_ERROR_UNKNOWN = 999,
};

/* Layouts as in the public nvml.h. */
typedef struct {
    char busIdLegacy[16];
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int pciDeviceId;
    unsigned int pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

typedef union {
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    int siVal;
    unsigned short usVal;
} nvmlValue_t;

typedef struct {
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    nvmlReturn_t nvmlReturn;
    nvmlValue_t value;
} nvmlFieldValue_t;

_Static_assert(sizeof(nvmlPciInfo_t) == 68, "nvmlPciInfo_t layout");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t layout");

#define NVML_FI_DEV_POWER_INSTANT 186
#define NVML_VALUE_TYPE_UNSIGNED_INT 1
#define MAX_DEVICES 16

enum reading_kind { R_CONST, R_UNSUPPORTED, R_ERROR, R_FILE };

struct reading {
    enum reading_kind kind;
    unsigned long long value;
    nvmlReturn_t rc;
    char path[1024];
};

struct device {
    int present;
    char uuid[96];
    char bus_id[32];
    char name[96];
    int minor;
    struct reading mig;
    struct reading handle;
    struct reading identity;
    struct reading energy;
    unsigned long long energy_rate_mw;
    char energy_line[1024];
    struct reading instant;
    struct reading power;
};

static struct device devices[MAX_DEVICES];
static unsigned int device_count;
static int init_count;
static struct timespec init_time;
static char script_dir[512];

static void reading_set(struct reading *r, const char *text)
{
    memset(r, 0, sizeof(*r));
    if (strcmp(text, "unsupported") == 0) {
        r->kind = R_UNSUPPORTED;
    } else if (strncmp(text, "err:", 4) == 0) {
        r->kind = R_ERROR;
        r->rc = atoi(text + 4);
    } else if (strncmp(text, "file:", 5) == 0) {
        r->kind = R_FILE;
        if (text[5] == '/' || !script_dir[0]) snprintf(r->path, sizeof(r->path), "%s", text + 5);
        else snprintf(r->path, sizeof(r->path), "%s/%s", script_dir, text + 5);
    } else {
        r->kind = R_CONST;
        r->value = strtoull(text, NULL, 10);
    }
}

/* Resolves a reading to (rc, value); a file is re-read at every call. */
static nvmlReturn_t reading_get(const struct reading *r, unsigned long long *value)
{
    switch (r->kind) {
    case R_CONST:
        *value = r->value;
        return NVML_SUCCESS;
    case R_UNSUPPORTED:
        return NVML_ERROR_NOT_SUPPORTED;
    case R_ERROR:
        return r->rc;
    case R_FILE: {
        char buf[64];
        int fd = open(r->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return NVML_ERROR_UNKNOWN;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0) return NVML_ERROR_UNKNOWN;
        buf[n] = 0;
        struct reading inner;
        buf[strcspn(buf, "\r\n")] = 0;
        reading_set(&inner, buf);
        if (inner.kind == R_FILE) return NVML_ERROR_UNKNOWN;
        return reading_get(&inner, value);
    }
    }
    return NVML_ERROR_UNKNOWN;
}

static void device_defaults(struct device *d, unsigned int i)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->uuid, sizeof(d->uuid), "GPU-00000000-0000-0000-0000-%012u", i);
    snprintf(d->bus_id, sizeof(d->bus_id), "00000000:%02X:00.0", 0x10 + i);
    snprintf(d->name, sizeof(d->name), "Fake GPU");
    d->minor = (int)i;
    reading_set(&d->mig, "unsupported");
    reading_set(&d->handle, "0");
    reading_set(&d->identity, "0");
    reading_set(&d->energy, "0");
    reading_set(&d->instant, "unsupported");
    reading_set(&d->power, "unsupported");
}

static const char *script_path(char *buf, size_t size)
{
    Dl_info info;
    if (dladdr((void *)&script_path, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash) {
            snprintf(buf, size, "%.*s/fake_nvml.script", (int)(slash - info.dli_fname), info.dli_fname);
            if (access(buf, R_OK) == 0) return buf;
        }
    }
    return getenv("FAKE_NVML_SCRIPT");
}

/* Returns the rc nvmlInit_v2 must give. */
static nvmlReturn_t load_script(void)
{
    char pathbuf[1024];
    const char *path = script_path(pathbuf, sizeof(pathbuf));
    nvmlReturn_t init_rc = NVML_SUCCESS;
    int explicit_count = -1;
    unsigned int highest = 0;

    device_count = 0;
    for (unsigned int i = 0; i < MAX_DEVICES; i++) device_defaults(&devices[i], i);
    if (!path || !*path) return NVML_SUCCESS;
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(script_dir, sizeof(script_dir), "%.*s", (int)(slash - path), path);
    else script_dir[0] = 0;

    FILE *f = fopen(path, "re");
    if (!f) return NVML_ERROR_UNKNOWN;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        unsigned int idx;
        char key[64];
        int consumed = 0;
        if (sscanf(line, " init %d", &init_rc) == 1) continue;
        if (sscanf(line, " count %d", &explicit_count) == 1) continue;
        if (sscanf(line, " dev %u %63s %n", &idx, key, &consumed) == 2 && idx < MAX_DEVICES) {
            char *val = line + consumed;
            size_t len = strlen(val);
            while (len > 0 && (val[len - 1] == ' ' || val[len - 1] == '\t')) val[--len] = 0;
            struct device *d = &devices[idx];
            d->present = 1;
            if (idx + 1 > highest) highest = idx + 1;
            if (strcmp(key, "uuid") == 0) snprintf(d->uuid, sizeof(d->uuid), "%s", val);
            else if (strcmp(key, "bus_id") == 0) snprintf(d->bus_id, sizeof(d->bus_id), "%s", val);
            else if (strcmp(key, "name") == 0) snprintf(d->name, sizeof(d->name), "%s", val);
            else if (strcmp(key, "minor") == 0) d->minor = atoi(val);
            else if (strcmp(key, "mig") == 0) reading_set(&d->mig, val);
            else if (strcmp(key, "handle") == 0) reading_set(&d->handle, val);
            else if (strcmp(key, "identity") == 0) reading_set(&d->identity, val);
            else if (strcmp(key, "energy") == 0) reading_set(&d->energy, val);
            else if (strcmp(key, "energy_rate_mw") == 0) d->energy_rate_mw = strtoull(val, NULL, 10);
            else if (strcmp(key, "energy_line") == 0) {
                if (val[0] == '/' || !script_dir[0]) snprintf(d->energy_line, sizeof(d->energy_line), "%s", val);
                else snprintf(d->energy_line, sizeof(d->energy_line), "%s/%s", script_dir, val);
            }
            else if (strcmp(key, "instant") == 0) reading_set(&d->instant, val);
            else if (strcmp(key, "power") == 0) reading_set(&d->power, val);
        }
    }
    fclose(f);
    device_count = explicit_count >= 0 ? (unsigned int)explicit_count : highest;
    if (device_count > MAX_DEVICES) device_count = MAX_DEVICES;
    return init_rc;
}

static struct device *device_of(void *handle)
{
    struct device *d = (struct device *)handle;
    if (init_count == 0) return NULL;
    if (d < devices || d >= devices + device_count) return NULL;
    return d;
}

#define CHECK_INIT() do { if (init_count == 0) return NVML_ERROR_UNINITIALIZED; } while (0)
#define DEVICE_OR_FAIL(d, h) struct device *d = device_of(h); \
    do { if (init_count == 0) return NVML_ERROR_UNINITIALIZED; if (!d) return NVML_ERROR_INVALID_ARGUMENT; } while (0)

nvmlReturn_t nvmlInit_v2(void)
{
    if (init_count > 0) { init_count++; return NVML_SUCCESS; } /* NVML counts nested inits */
    nvmlReturn_t rc = load_script();
    if (rc != NVML_SUCCESS) return rc;
    clock_gettime(CLOCK_MONOTONIC, &init_time);
    init_count = 1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    CHECK_INIT();
    init_count--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t rc)
{
    switch (rc) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
    CHECK_INIT();
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = device_count;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **handle)
{
    CHECK_INIT();
    if (!handle || index >= device_count) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned long long ignored;
    nvmlReturn_t rc = reading_get(&devices[index].handle, &ignored);
    if (rc != NVML_SUCCESS) return rc;
    *handle = &devices[index];
    return NVML_SUCCESS;
}

static nvmlReturn_t copy_string(const char *src, char *dst, unsigned int length)
{
    if (!dst) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(void *handle, char *uuid, unsigned int length)
{
    DEVICE_OR_FAIL(d, handle);
    unsigned long long ignored;
    nvmlReturn_t rc = reading_get(&d->identity, &ignored);
    if (rc != NVML_SUCCESS) return rc;
    return copy_string(d->uuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetName(void *handle, char *name, unsigned int length)
{
    DEVICE_OR_FAIL(d, handle);
    unsigned long long ignored;
    nvmlReturn_t rc = reading_get(&d->identity, &ignored);
    if (rc != NVML_SUCCESS) return rc;
    return copy_string(d->name, name, length);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(void *handle, nvmlPciInfo_t *pci)
{
    DEVICE_OR_FAIL(d, handle);
    if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned long long ignored;
    nvmlReturn_t rc = reading_get(&d->identity, &ignored);
    if (rc != NVML_SUCCESS) return rc;
    memset(pci, 0, sizeof(*pci));
    unsigned int domain = 0, bus = 0, dev = 0, fn = 0;
    sscanf(d->bus_id, "%x:%x:%x.%x", &domain, &bus, &dev, &fn);
    pci->domain = domain;
    pci->bus = bus;
    pci->device = dev;
    pci->pciDeviceId = 0x233010DE; /* H100 SXM5 device id + NVIDIA vendor id */
    pci->pciSubSystemId = 0x16C110DE;
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "%04X:%02X:%02X.%X", domain & 0xFFFF, bus, dev, fn);
    snprintf(pci->busId, sizeof(pci->busId), "%s", d->bus_id);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMinorNumber(void *handle, unsigned int *minor)
{
    DEVICE_OR_FAIL(d, handle);
    if (!minor) return NVML_ERROR_INVALID_ARGUMENT;
    *minor = (unsigned int)d->minor;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMigMode(void *handle, unsigned int *current, unsigned int *pending)
{
    DEVICE_OR_FAIL(d, handle);
    if (!current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned long long mode;
    nvmlReturn_t rc = reading_get(&d->mig, &mode);
    if (rc != NVML_SUCCESS) return rc;
    *current = (unsigned int)mode;
    *pending = (unsigned int)mode;
    return NVML_SUCCESS;
}

static unsigned long long ns_of(const struct timespec *t)
{
    return (unsigned long long)t->tv_sec * 1000000000ull + (unsigned long long)t->tv_nsec;
}

static unsigned long long monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return ns_of(&now);
}

/* The energy of mW over ns, in mJ: mW x ns = 1e-12 J; / 1e9 -> mJ. */
static unsigned long long mj_over(unsigned long long mw, unsigned long long ns)
{
    return (unsigned long long)((unsigned __int128)mw * ns / 1000000000ull);
}

/* "<mJ> <t0 ns> <mW>" from the line's file, evaluated at CLOCK_MONOTONIC now. */
static nvmlReturn_t energy_from_line(const char *path, unsigned long long *energy)
{
    char buf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NVML_ERROR_UNKNOWN;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return NVML_ERROR_UNKNOWN;
    buf[n] = 0;
    unsigned long long mj, t0, mw;
    if (sscanf(buf, "%llu %llu %llu", &mj, &t0, &mw) != 3) return NVML_ERROR_UNKNOWN;
    unsigned long long ns = monotonic_ns();
    *energy = mj + (ns > t0 ? mj_over(mw, ns - t0) : 0);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(void *handle, unsigned long long *energy)
{
    DEVICE_OR_FAIL(d, handle);
    if (!energy) return NVML_ERROR_INVALID_ARGUMENT;
    if (d->energy_line[0]) return energy_from_line(d->energy_line, energy);
    unsigned long long value;
    nvmlReturn_t rc = reading_get(&d->energy, &value);
    if (rc != NVML_SUCCESS) return rc;
    if (d->energy_rate_mw) value += mj_over(d->energy_rate_mw, monotonic_ns() - ns_of(&init_time));
    *energy = value;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(void *handle, unsigned int *power)
{
    DEVICE_OR_FAIL(d, handle);
    if (!power) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned long long value;
    nvmlReturn_t rc = reading_get(&d->power, &value);
    if (rc != NVML_SUCCESS) return rc;
    *power = (unsigned int)value;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetFieldValues(void *handle, int count, nvmlFieldValue_t *values)
{
    DEVICE_OR_FAIL(d, handle);
    if (!values || count < 0) return NVML_ERROR_INVALID_ARGUMENT;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (int i = 0; i < count; i++) {
        nvmlFieldValue_t *fv = &values[i];
        fv->timestamp = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
        fv->latencyUsec = 0;
        if (fv->fieldId != NVML_FI_DEV_POWER_INSTANT) {
            fv->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
            continue;
        }
        unsigned long long value;
        /* Like the real library: the call succeeds, each field carries its own return code. */
        fv->nvmlReturn = reading_get(&d->instant, &value);
        if (fv->nvmlReturn == NVML_SUCCESS) {
            fv->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
            fv->value.ullVal = 0;
            fv->value.uiVal = (unsigned int)value;
        }
    }
    return NVML_SUCCESS;
}
