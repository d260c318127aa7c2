using System.Diagnostics;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// One finalizer per job at a time: flock(2) on <c>&lt;state dir&gt;/finalize.lock</c>, held for the whole
/// finalization (Parquet, row, cleanup). The kernel drops it when its holder dies, so a finalizer killed mid-way
/// (the epilog's kill -9 of a sampler past stop_timeout_s) never blocks the next one. The lock file goes away with
/// the state dir; a waiter then finds the job's finalized marker and does nothing.
/// </summary>
public sealed class FinalizationLock : IDisposable
{
    public const string FileName = "finalize.lock";

    private int _fd;

    private FinalizationLock(int fd) => _fd = fd;

    /// <summary>
    /// Takes the job's lock, waiting up to <paramref name="wait"/> for another finalizer to finish.
    /// Null when the state dir does not exist (nothing to finalize, or already finalized and removed) or when
    /// the wait ran out; <paramref name="busy"/> tells the two apart.
    /// </summary>
    public static FinalizationLock? Acquire(string stateDir, TimeSpan wait, out bool busy) =>
        Take(Libc.open_mode(Path.Combine(stateDir, FileName), Libc.O_RDWR | Libc.O_CREAT | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0b110_000_000), wait, out busy);

    /// <summary>
    /// The same lock on a directory itself (its descriptor; no lock file): a node's day spool while a sampler has it open
    /// (NodeSpool), which JobStateCleanup takes before it removes a day. Null as <see cref="Acquire"/>, and when the path
    /// no longer names the directory locked (renamed away while this waited).
    /// </summary>
    public static FinalizationLock? AcquireDirectory(string dir, TimeSpan wait, out bool busy)
    {
        var held = Take(Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC), wait, out busy);
        if (held is null || Libc.StatFd(held._fd)?.Id == Libc.StatPath(dir)?.Id) return held;
        held.Dispose();
        return null;
    }

    private static FinalizationLock? Take(int fd, TimeSpan wait, out bool busy)
    {
        busy = false;
        if (fd < 0) return null;
        var clock = Stopwatch.StartNew();
        while (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
        {
            if (clock.Elapsed >= wait)
            {
                Libc.close(fd);
                busy = true;
                return null;
            }
            Thread.Sleep(10);
        }
        return new FinalizationLock(fd);
    }

    public void Dispose()
    {
        if (_fd >= 0) Libc.close(_fd); // closing the last descriptor releases the flock
        _fd = -1;
    }
}
