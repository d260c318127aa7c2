using System.Runtime.InteropServices;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>
/// The libc calls the MSR and perf_events readers make on raw descriptors. Raw fds rather than SafeFileHandle:
/// a perf_event descriptor cannot be pread (the kernel answers ESPIPE), and an MSR device must be read at the
/// register's offset, never at a file position. Source-generated P/Invoke, bound at link time (DirectPInvoke libc).
/// </summary>
internal static unsafe partial class RaplNative
{
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;
    public const int EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, EACCES = 13, ENODEV = 19, EINVAL = 22, EMFILE = 24, ENOSYS = 38, EOPNOTSUPP = 95;
    /// <summary>x86-64 syscall number of perf_event_open (glibc has no wrapper).</summary>
    public const nint SYS_perf_event_open = 298;
    public const nuint PERF_FLAG_FD_CLOEXEC = 8;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    // No caller of the reads below reads their errno (a failed read is a failed channel, flagged whatever the cause):
    // without SetLastError the stub neither clears errno before the call nor saves it after, two runtime calls per read
    // that `perf` showed on the tick (bench/README.md, CPU per tick). pread: the files a read of which may block (a
    // cgroup's cpu.stat, SysfsCounterFile.Read); the tick's counters go through PreadCounter / ReadCounter.
    [LibraryImport("libc", SetLastError = false)]
    public static partial nint pread(int fd, void* buf, nuint count, long offset);

    /// <summary>x86-64 syscall numbers of read and pread64 (arch/x86/entry/syscalls/syscall_64.tbl).</summary>
    private const nint SYS_read = 0, SYS_pread64 = 17;

    // The counter reads of the tick (energy_uj, an MSR register, a perf count): a few µs at most — the kernel reads a
    // register, on another CPU by an IPI when it must — never a wait on I/O, a lock held across I/O or this process.
    // - [SuppressGCTransition]: no switch to preemptive mode and back around each read (RhpPInvoke/RhpPInvokeReturn on
    //   the tick's profile). The runtime's rule is a short call that never blocks long nor calls back into managed code:
    //   a GC that starts meanwhile waits those µs for the tick thread. Never for a cgroup file (cpu.stat can flush
    //   statistics for long) nor any wait: those keep pread above.
    // - syscall(2) rather than glibc's pread/read: in a multi-threaded process (every .NET one) those are cancellation
    //   points that switch async cancellation on and off around the system call (__pthread_enable/disable_asynccancel on
    //   the profile); the single-threaded C reader skips that. No thread of this process is ever cancelled.
    // Errors as glibc's: -1 (errno, not read by any caller).
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = false)]
    [SuppressGCTransition]
    private static partial nint syscall_pread(nint number, nint fd, void* buf, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = false)]
    [SuppressGCTransition]
    private static partial nint syscall_read(nint number, nint fd, void* buf, nuint count);

    /// <summary>pread of a counter on the tick (see above: never for a file whose read may block).</summary>
    public static nint PreadCounter(int fd, void* buf, nuint count, long offset) => syscall_pread(SYS_pread64, fd, buf, count, offset);

    /// <summary>read of a counter on the tick (a perf event's count; see above).</summary>
    public static nint ReadCounter(int fd, void* buf, nuint count) => syscall_read(SYS_read, fd, buf, count);

    /// <summary>
    /// glibc's syscall(2) is variadic in C but moves integer registers only (no va_arg, no vector registers),
    /// so a fixed six-argument binding is the same call.
    /// </summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial nint syscall(nint number, void* a1, nint a2, nint a3, nint a4, nuint a5);

    /// <summary>Reads the 8 bytes at <paramref name="offset"/> (an MSR register); false on a short or failed read.</summary>
    public static bool ReadU64(int fd, long offset, out ulong value)
    {
        ulong v;
        nint n = PreadCounter(fd, &v, 8, offset);
        value = v;
        return n == 8;
    }

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
