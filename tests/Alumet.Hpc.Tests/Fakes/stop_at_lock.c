/* LD_PRELOAD shim for tests: the process stops itself (SIGSTOP) right after it takes a write lock (fcntl F_SETLK or
 * F_SETLKW, F_WRLCK) whose range covers byte N of a file whose path ends with SUFFIX, so that a test can kill it there
 * (SIGKILL) at a known point, e.g. SQLite's WAL recovery lock: ALUMET_TEST_STOP_AT_LOCK="-shm:122". Once per process.
 * SQLite (e_sqlite3) calls fcntl64; the runtime calls fcntl: both are wrapped. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int stopped;

static void maybe_stop(int fd, int cmd, void *arg)
{
    const char *spec = getenv("ALUMET_TEST_STOP_AT_LOCK");
    if (stopped || !spec || !arg || (cmd != F_SETLK && cmd != F_SETLKW)) return;
    const struct flock *l = arg;
    const char *colon = strrchr(spec, ':');
    if (!colon || l->l_type != F_WRLCK || l->l_whence != SEEK_SET) return;
    long long byte = atoll(colon + 1);
    if (byte < l->l_start || (l->l_len != 0 && byte >= l->l_start + l->l_len)) return;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    size_t suffix = (size_t)(colon - spec);
    if (n < 0 || (size_t)n < suffix || memcmp(path + n - suffix, spec, suffix) != 0) return;
    stopped = 1;
    raise(SIGSTOP);
}

static int call(const char *name, int fd, int cmd, void *arg)
{
    int (*real)(int, int, ...) = (int (*)(int, int, ...))dlsym(RTLD_NEXT, name);
    int rc = real(fd, cmd, arg);
    if (rc == 0) maybe_stop(fd, cmd, arg);
    return rc;
}

/* fcntl64 and fcntl: the third argument, when there is one, is a pointer or an int passed in the same register. */
#define WRAP(name)                                    \
    int name(int fd, int cmd, ...)                    \
    {                                                 \
        va_list ap;                                   \
        va_start(ap, cmd);                            \
        void *arg = va_arg(ap, void *);               \
        va_end(ap);                                   \
        return call(#name, fd, cmd, arg);             \
    }

WRAP(fcntl64)
WRAP(fcntl)
