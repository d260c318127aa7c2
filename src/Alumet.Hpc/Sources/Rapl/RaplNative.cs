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

    // pread and read run on every tick (1 kHz, one per counter) and no caller reads their errno (a failed read is a
    // failed channel, flagged whatever the cause): without SetLastError the stub neither clears errno before the call
    // nor saves it after, two runtime calls per read that `perf` showed on the tick (bench/README.md, CPU per tick).
    [LibraryImport("libc", SetLastError = false)]
    public static partial nint pread(int fd, void* buf, nuint count, long offset);

    [LibraryImport("libc", SetLastError = false)]
    public static partial nint read(int fd, void* buf, nuint count);

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
        nint n = pread(fd, &v, 8, offset);
        value = v;
        return n == 8;
    }

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
