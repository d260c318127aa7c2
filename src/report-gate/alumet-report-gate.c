/*
 * alumet-report gate: installed as /usr/local/bin/alumet-report, owned root:alumet, mode 2755 (setgid alumet).
 *
 * Why a separate program rather than a setgid alumet-hpc: alumet-hpc is also the root sampler and the hooks, so a
 * setgid bit on it would hand the group to every subcommand; and a .NET runtime (NativeAOT too) reads its
 * configuration from the environment (DOTNET_* GC and diagnostics settings) before Main runs, as does SQLite
 * (SQLITE_TMPDIR, TMPDIR). The kernel marks this exec secure (AT_SECURE: glibc drops LD_PRELOAD & co. here), but not
 * the exec of alumet-hpc below, which inherits the group without any set-id bit of its own. So this gate builds a
 * fresh environment (PATH, a TZ zone name, and for root only $ALUMET_HPC_CONFIG), then runs alumet-hpc as "alumet-report" (argv[0] selects the report and nothing else), which
 * uses the group only to open the system database and filters rows by the caller's real uid.
 *
 * Build: gcc -O2 -Wall -Wextra -Werror [-DALUMET_HPC_BIN='"/path/alumet-hpc"'] [-DALUMET_SYSTEM_CONFIG='"/path.toml"']
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ALUMET_HPC_BIN
#define ALUMET_HPC_BIN "/usr/local/bin/alumet-hpc"
#endif

/* TZ names a zone under /usr/share/zoneinfo (Europe/Paris, UTC) or a POSIX rule (CET-1CEST): keep it so times print
 * in the caller's zone, but never a path (":/home/u/x" would make the runtime read a file of the caller's choice). */
static int safe_tz(const char *tz)
{
    if (tz == NULL || *tz == '\0' || strlen(tz) > 64) return 0;
    if (*tz == ':') tz++;
    if (*tz == '/' || strstr(tz, "..") != NULL) return 0;
    for (const char *c = tz; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '/' || *c == '_' || *c == '-' || *c == '+' || *c == ',' || *c == '.' || *c == '<' || *c == '>'))
            return 0;
    return 1;
}

/* The config a caller names in $ALUMET_HPC_CONFIG: passed on for root only (real uid 0), who may point the report
 * anywhere (src/Alumet.Hpc/Commands/ReportEntry.cs); for anyone else it is dropped with the rest of the environment. */
static char *root_config(void)
{
    const char *path = getenv("ALUMET_HPC_CONFIG");
    if (getuid() != 0 || path == NULL || *path == '\0') return NULL;
    static const char name[] = "ALUMET_HPC_CONFIG=";
    char *entry = malloc(sizeof name + strlen(path));
    if (entry == NULL) return NULL;
    memcpy(entry, name, sizeof name - 1);
    strcpy(entry + sizeof name - 1, path);
    return entry;
}

int main(int argc, char **argv)
{
    /* An empty argument list (execve with argv = { NULL }): argv[0] is then argv's terminating NULL, and writing it
     * below would turn the strings that follow, the caller's environment, into arguments (pkexec, CVE-2021-4034).
     * Linux >= 5.18 passes "" as argv[0] instead; no shell passes an empty name, so both are refused, before anything
     * else. Exit 2: the report's code for a command line it cannot take (README, alumet-report). */
    if (argc < 1 || argv[0] == NULL || argv[0][0] == '\0') {
        fputs("alumet-report: error: started with an empty argument list (no program name); "
              "run it as alumet-report [OPTIONS]\n", stderr);
        return 2;
    }
    struct stat st;
    if (stat(ALUMET_HPC_BIN, &st) != 0) {
        fprintf(stderr, "alumet-report: error: cannot run %s: %s; install alumet-hpc there (README, Install)\n",
                ALUMET_HPC_BIN, strerror(errno));
        return 1;
    }
    /* Only a binary that no user can replace gets the group. */
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "alumet-report: error: %s must be a root-owned file not writable by group or others; "
                        "reinstall it with install -o root -m 755 (README, Install)\n", ALUMET_HPC_BIN);
        return 1;
    }

    char tz[80] = "";
    const char *user_tz = getenv("TZ");
    if (safe_tz(user_tz)) snprintf(tz, sizeof tz, "TZ=%s", user_tz);
    char *envp[5];
    int n = 0;
    envp[n++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
#ifdef ALUMET_SYSTEM_CONFIG
    envp[n++] = "ALUMET_HPC_SYSTEM_CONFIG=" ALUMET_SYSTEM_CONFIG;
#endif
    if (tz[0]) envp[n++] = tz;
    char *config = root_config();
    if (config != NULL) envp[n++] = config;
    envp[n] = NULL;

    argv[0] = "alumet-report";
    execve(ALUMET_HPC_BIN, argv, envp);
    fprintf(stderr, "alumet-report: error: cannot run %s: %s\n", ALUMET_HPC_BIN, strerror(errno));
    return 1;
}
