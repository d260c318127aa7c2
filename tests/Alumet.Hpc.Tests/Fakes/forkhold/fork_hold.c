/* A copy of the calling process that keeps every descriptor the caller has open (a fork's copy of its table) for ms
   milliseconds, then exits: what a child that the test host forks (Process.Start) holds until its execve closes them
   (O_CLOEXEC), only for longer. Raw clone(2) and syscalls only: no pthread_atfork handler, nothing of the runtime
   runs in the copy. Returns the copy's pid (or -1, errno set). */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int alumet_fork_hold(int ms)
{
    long pid = syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
    if (pid == 0)
    {
        struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
        while (syscall(SYS_nanosleep, &t, &t) != 0) { }
        syscall(SYS_exit_group, 0);
    }
    return (int)pid;
}
