/*
 * Process probe for `make bench`: starts one program and measures it from the outside, the same way for the
 * Alumet.Hpc sampler and the C reader, so their figures compare.
 *
 *   probe OUT_FILE WARMUP_S WINDOW_S -- PROGRAM ARGS...
 *     Spawns PROGRAM with ALUMET_BENCH_T0_NS = CLOCK_MONOTONIC at spawn (the program reports its first sample
 *     relative to it). After WARMUP_S seconds it snapshots the CPU time of all the program's threads
 *     (/proc/PID/task/TID/schedstat: ns on CPU; thread-exact, unlike the 10 ms ticks of /proc/PID/stat),
 *     again WINDOW_S seconds later, then sends SIGTERM and waits. The window excludes start-up and the
 *     end-of-job work (Parquet conversion, DB row), so cpu_window_ns is the steady sampling cost.
 *   probe OUT_FILE WARMUP_S WINDOW_S pid PID
 *     The same window on a running process that is not our child (the node sampler a prolog started detached):
 *     window_ns, cpu_window_ns, hwm_window_kb; no signal is sent. Exits 1 if PID is gone before the window ends.
 *   probe OUT_FILE wait -- PROGRAM ARGS...
 *     Spawns PROGRAM and waits for it to exit (wall time of a short command, e.g. --help).
 *   probe OUT_FILE hook -- NAME=VALUE... PROGRAM
 *     As wait, with an environment holding only the NAME=VALUE pairs and ALUMET_BENCH_T0_NS, no argv: how
 *     slurmd runs a Prolog (no PATH, no HOME, no arguments).
 *
 * OUT_FILE gets key=value lines: wall_ns (spawn to exit), window_ns, cpu_window_ns, hwm_window_kb (VmHWM at the
 * end of the window: peak RSS while sampling), maxrss_kb and cpu_total_ns (wait4 rusage: whole life, end-of-job
 * work included), term_to_exit_ns (SIGTERM to exit: the stop/finalize time), exit_code (or 128+signal).
 * If PROGRAM does not exit within 60 s of SIGTERM it is killed and probe exits 1.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "now_ns.h"

static void sleep_until(int64_t t)
{
    struct timespec req = { t / 1000000000LL, t % 1000000000LL };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &req, NULL) == EINTR) {}
}

/* Sum of on-CPU ns over the live threads of pid; -1 if the process is gone. */
static long long cpu_ns(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long long sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[320];
        snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        long long run = 0;
        if (fscanf(f, "%lld", &run) == 1) sum += run;
        fclose(f);
    }
    closedir(d);
    return sum;
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) { kb = strtol(line + 6, NULL, 10); break; }
    fclose(f);
    return kb;
}

/* Still running (not exited, not a zombie)? */
static int running(pid_t pid)
{
    siginfo_t info;
    memset(&info, 0, sizeof info);
    /* WNOWAIT: look without reaping, so wait4 still gets the rusage at the end. */
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: probe OUT_FILE WARMUP_S WINDOW_S -- PROGRAM ARGS...\n       probe OUT_FILE WARMUP_S WINDOW_S pid PID\n"
                        "       probe OUT_FILE wait -- PROGRAM ARGS...\n"
                        "       probe OUT_FILE hook -- NAME=VALUE... PROGRAM\n");
        return 2;
    }
    const char *out = argv[1];
    if (strcmp(argv[4], "pid") == 0) {
        pid_t pid = (pid_t)atoi(argc > 5 ? argv[5] : "0");
        if (pid <= 0) { fprintf(stderr, "probe: pid: expected a process id\n"); return 2; }
        int64_t t1 = now_ns() + (int64_t)(atof(argv[2]) * 1e9);
        sleep_until(t1);
        long long cpu1 = cpu_ns(pid);
        int64_t w1 = now_ns();
        sleep_until(w1 + (int64_t)(atof(argv[3]) * 1e9));
        long long cpu2 = cpu_ns(pid);
        int64_t w2 = now_ns();
        long hwm = vm_hwm_kb(pid);
        if (cpu1 < 0 || cpu2 < 0 || hwm < 0) { fprintf(stderr, "probe: process %d is gone\n", (int)pid); return 1; }
        FILE *f = fopen(out, "w");
        if (!f) { perror(out); return 1; }
        fprintf(f, "window_ns=%lld\ncpu_window_ns=%lld\nhwm_window_kb=%ld\nexit_code=0\n", (long long)(w2 - w1), cpu2 - cpu1, hwm);
        fclose(f);
        return 0;
    }
    int hook_mode = strcmp(argv[2], "hook") == 0;
    int wait_mode = hook_mode || strcmp(argv[2], "wait") == 0;
    int cmd = wait_mode ? 4 : 5;
    if (cmd >= argc || strcmp(argv[cmd - 1], "--") != 0) { fprintf(stderr, "probe: expected -- PROGRAM\n"); return 2; }
    double warmup = wait_mode ? 0 : atof(argv[2]), window = wait_mode ? 0 : atof(argv[3]);

    int64_t t0 = now_ns();
    char t0s[32];
    snprintf(t0s, sizeof t0s, "%lld", (long long)t0);
    if (hook_mode) {
        clearenv();
        while (cmd < argc && strchr(argv[cmd], '=')) putenv(argv[cmd++]);
        if (cmd >= argc) { fprintf(stderr, "probe: hook: expected PROGRAM after the NAME=VALUE pairs\n"); return 2; }
        argv[cmd + 1] = NULL; /* no argv, as slurmd */
    }
    setenv("ALUMET_BENCH_T0_NS", t0s, 1);
    pid_t pid = fork();
    if (pid < 0) { perror("probe: fork"); return 1; }
    if (pid == 0) {
        execvp(argv[cmd], argv + cmd);
        fprintf(stderr, "probe: %s: %s\n", argv[cmd], strerror(errno));
        _exit(127);
    }

    long long cpu1 = -1, cpu2 = -1;
    long hwm = -1;
    int64_t t1 = 0, t2 = 0, tterm = 0;
    if (!wait_mode) {
        /* Poll every 10 ms so an early exit (bad config) is noticed at once. */
        int64_t w1 = t0 + (int64_t)(warmup * 1e9), w2 = w1 + (int64_t)(window * 1e9);
        while (now_ns() < w1 && running(pid)) sleep_until(now_ns() + 10000000LL);
        if (running(pid)) { t1 = now_ns(); cpu1 = cpu_ns(pid); }
        while (now_ns() < w2 && running(pid)) sleep_until(now_ns() + 10000000LL);
        if (running(pid)) { t2 = now_ns(); cpu2 = cpu_ns(pid); hwm = vm_hwm_kb(pid); }
        tterm = now_ns();
        kill(pid, SIGTERM);
    }

    int status = 0;
    struct rusage ru;
    int killed = 0;
    for (;;) {
        pid_t r = wait4(pid, &status, WNOHANG, &ru);
        if (r == pid) break;
        if (r < 0) { perror("probe: wait4"); return 1; }
        if (!wait_mode && !killed && now_ns() - tterm > 60000000000LL) { kill(pid, SIGKILL); killed = 1; }
        sleep_until(now_ns() + 1000000LL);
    }
    int64_t tend = now_ns();

    FILE *f = fopen(out, "w");
    if (!f) { perror(out); return 1; }
    fprintf(f, "wall_ns=%lld\n", (long long)(tend - t0));
    if (!wait_mode) {
        fprintf(f, "window_ns=%lld\ncpu_window_ns=%lld\nhwm_window_kb=%ld\nterm_to_exit_ns=%lld\n",
                (long long)(t2 - t1), (cpu1 >= 0 && cpu2 >= 0) ? cpu2 - cpu1 : -1LL, hwm, (long long)(tend - tterm));
    }
    fprintf(f, "cpu_total_ns=%lld\nmaxrss_kb=%ld\n",
            (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL
            + (long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL, ru.ru_maxrss);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fprintf(f, "exit_code=%d\n", code);
    fclose(f);
    return killed ? 1 : 0;
}
