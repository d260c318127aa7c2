using System.Runtime.InteropServices;

namespace Alumet.Hpc.Native;

/// <summary>The few libc calls .NET does not expose. Source-generated P/Invoke: no runtime marshalling, AOT-safe.</summary>
internal static partial class Libc
{
    public const int CLOCK_REALTIME = 0, CLOCK_MONOTONIC = 1;
    /// <summary>Time since boot, suspend included: never stepped (unlike CLOCK_REALTIME), the same in every process of a node.</summary>
    public const int CLOCK_BOOTTIME = 7;
    public const int TIMER_ABSTIME = 1;
    public const int PR_SET_TIMERSLACK = 29;
    public const int SIG_BLOCK = 0;
    public const int SIG_UNBLOCK = 1;
    public const int SIG_SETMASK = 2;
    public const int EINTR = 4;

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Sec;
        public long Nsec;
    }

    // A vDSO read (no system call): tens of ns, no wait, no callback into managed code: what [SuppressGCTransition]
    // requires (Core/Clock, twice per 1 kHz tick). Cannot fail for CLOCK_MONOTONIC and CLOCK_REALTIME.
    [LibraryImport("libc", SetLastError = false)]
    [SuppressGCTransition]
    public static unsafe partial int clock_gettime(int clock, Timespec* ts);

    // clock_nanosleep returns its error number instead of setting errno: without SetLastError the stub neither clears
    // errno before each wait nor saves it after (two runtime calls per tick at 1 kHz, Sampling/Ticker). A wait: the GC
    // transition stays.
    [LibraryImport("libc", SetLastError = false)]
    public static partial int clock_nanosleep(int clockId, int flags, in Timespec request, IntPtr remain);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsid();

    /// <summary>Replaces this process's program (same pid); <paramref name="argv"/> ends with a null pointer. Returns only on failure.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int execv(byte* path, byte** argv);

    public const int SCHED_OTHER = 0;
    public const int SCHED_FIFO = 1;
    /// <summary>Or'ed into a policy: threads and processes this thread creates start at SCHED_OTHER (sched(7)).</summary>
    public const int SCHED_RESET_ON_FORK = 0x40000000;

    /// <summary>pid 0 = the calling thread (Linux schedules threads); param points to an int priority.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int sched_setscheduler(int pid, int policy, in int priority);

    /// <summary>Size of glibc's sigset_t; bit n-1 (byte (n-1)/8) is signal n.</summary>
    public const int SigsetBytes = 128;

    /// <summary>sigset_t is <see cref="SigsetBytes"/> bytes in glibc; an all-zero set is the empty set.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int sigprocmask(int how, byte* set, byte* oldset);

    public const int SIGHUP = 1, SIGINT = 2, SIGQUIT = 3, SIGTERM = 15;

    /// <summary>sigprocmask(<paramref name="how"/>) of exactly <paramref name="signals"/> (none: the empty set); the mask
    /// it had into <paramref name="oldset"/> (<see cref="SigsetBytes"/> bytes) when given.</summary>
    public static unsafe int MaskSignals(int how, ReadOnlySpan<int> signals) => MaskSignals(how, signals, null);

    /// <inheritdoc cref="MaskSignals(int, ReadOnlySpan{int})"/>
    public static unsafe int MaskSignals(int how, ReadOnlySpan<int> signals, byte* oldset)
    {
        byte* set = stackalloc byte[SigsetBytes];
        new Span<byte>(set, SigsetBytes).Clear();
        foreach (int signal in signals) set[(signal - 1) / 8] |= (byte)(1 << ((signal - 1) % 8));
        return sigprocmask(how, set, oldset);
    }

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int sched_setaffinity(int pid, nuint cpusetsize, byte* mask);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int dup2(int oldfd, int newfd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int close(int fd);

    public const int O_RDONLY = 0, O_DIRECTORY = 0x10000;

    /// <summary>Makes a file's (or a directory's entries') writes durable.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int fsync(int fd);

    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000;

    /// <summary>open(2) with a mode, for O_CREAT.</summary>
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open_mode(string path, int flags, int mode);

    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int EWOULDBLOCK = 11;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int flock(int fd, int operation);

    public const int F_OK = 0, X_OK = 1, W_OK = 2;
    public const int EACCES = 13;

    /// <summary>Whether the real uid may do <paramref name="mode"/> on <paramref name="path"/> (root: X_OK needs an x bit).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int access(string path, int mode);

    [LibraryImport("libc")]
    public static partial uint getuid();

    [LibraryImport("libc", SetLastError = true)]
    public static partial int kill(int pid, int sig);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int chown(string path, int owner, int group);

    /// <summary>mkdir(2): fails with EEXIST on an existing path (Directory.CreateDirectory does not), which is what
    /// creating a fresh directory a user must not have planted needs.</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkdir(string path, int mode);

    /// <summary>rmdir(2): a cgroup directory is removed by rmdir alone (its control files are not files to delete).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int rmdir(string path);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int lstat(string path, byte* buf);

    /// <summary>Owner uid and gid of a path (not following a symlink), or null. struct stat offsets per ABI (x86-64: 28/32, arm64: 24/28).</summary>
    public static unsafe (int Uid, int Gid)? Owner(string path)
    {
        int at = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 28,
            Architecture.Arm64 => 24,
            _ => -1,
        };
        if (at < 0) return null;
        byte* buf = stackalloc byte[256];
        if (lstat(path, buf) != 0) return null;
        return (*(int*)(buf + at), *(int*)(buf + at + 4));
    }

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int stat_path(string path, byte* buf);

    /// <summary>
    /// What a directory's stat says about its entries: inode, link count, mtime and ctime (ns). On cgroupfs and cgroup2fs
    /// (kernfs), ext4, tmpfs and xfs a directory's link count is 2 + its subdirectories (checked on v1 and v2 here:
    /// mkdir/rmdir of a child moves it; kernfs leaves mtime alone); btrfs and others say 1, which no listing matches.
    /// </summary>
    public readonly record struct DirectoryState(ulong Inode, ulong Links, long MtimeNs, long CtimeNs);

    public const int ENOENT = 2, ENOTDIR = 20;

    /// <summary>stat(2) of <paramref name="path"/> (x86-64 and arm64 struct stat), or null.</summary>
    public static DirectoryState? StatDirectory(string path) => StatDirectory(path, out _);

    /// <summary>
    /// stat(2) of <paramref name="path"/> (x86-64 and arm64 struct stat), or null with its errno; 0 where this ABI's struct
    /// stat is not known here (not stat'ed).
    /// </summary>
    public static unsafe DirectoryState? StatDirectory(string path, out int errno)
    {
        errno = 0;
        int linksAt;
        bool wideLinks;
        switch (RuntimeInformation.ProcessArchitecture)
        {
            case Architecture.X64: linksAt = 16; wideLinks = true; break;  // st_nlink: unsigned long after st_ino
            case Architecture.Arm64: linksAt = 20; wideLinks = false; break; // st_nlink: unsigned int after st_mode
            default: return null;
        }
        byte* buf = stackalloc byte[256];
        if (stat_path(path, buf) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        ulong links = wideLinks ? *(ulong*)(buf + linksAt) : *(uint*)(buf + linksAt);
        // st_mtim at 88 and st_ctim at 104 (timespec: seconds, nanoseconds) on both ABIs.
        return new DirectoryState(*(ulong*)(buf + 8), links,
            *(long*)(buf + 88) * 1_000_000_000 + *(long*)(buf + 96), *(long*)(buf + 104) * 1_000_000_000 + *(long*)(buf + 112));
    }

    /// <summary>The file a descriptor holds open: st_dev and st_ino (offsets 0 and 8 on x86-64 and arm64), or null.</summary>
    public static unsafe (ulong Dev, ulong Ino)? FileId(int fd)
    {
        byte* buf = stackalloc byte[256];
        return fstat(fd, buf) == 0 ? (*(ulong*)buf, *(ulong*)(buf + 8)) : null;
    }

    /// <summary>The file a path names (following links), as <see cref="FileId(int)"/>, or null.</summary>
    public static unsafe (ulong Dev, ulong Ino)? FileId(string path)
    {
        byte* buf = stackalloc byte[256];
        return stat_path(path, buf) == 0 ? (*(ulong*)buf, *(ulong*)(buf + 8)) : null;
    }

    public const int F_GETFD = 1, F_SETFD = 2, FD_CLOEXEC = 1;

    /// <summary>fcntl(2) with an int argument (F_GETFD, F_SETFD).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport("libc")]
    public static partial uint getgid();

    [LibraryImport("libc")]
    public static partial uint getegid();

    /// <summary>Sets real, effective and saved gid at once: the only way to give up a setgid group for good.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int setresgid(uint rgid, uint egid, uint sgid);

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int getgroups(int size, uint* list);

    /// <summary>struct passwd* (NSS: files, LDAP, sssd); pw_uid is at offset 16 on LP64 (after two char*).</summary>
    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr getpwnam(string name);

    /// <summary>struct group*; gr_gid is at offset 16 on LP64 (after two char*).</summary>
    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr getgrnam(string name);

    /// <summary>fstat(2) into a 144-byte struct stat (x86-64 layout: st_mode at 24, st_uid at 28, st_gid at 32).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int fstat(int fd, byte* buf);

    /// <summary>Mode, owner and group of an open file (fstat: the file itself, whatever path led to it).</summary>
    public static (uint Mode, int Uid, int Gid)? FileOwner(Microsoft.Win32.SafeHandles.SafeFileHandle handle) =>
        FileStatus((int)handle.DangerousGetHandle()) is var (mode, _, uid, gid) ? (mode, uid, gid) : null;

    /// <summary>st_mode, st_nlink, st_uid and st_gid of an open file (fstat; x86-64 struct stat: st_nlink at 16, st_mode at
    /// 24, st_uid at 28, st_gid at 32), or null.</summary>
    public static unsafe (uint Mode, ulong Links, int Uid, int Gid)? FileStatus(int fd)
    {
        byte* buf = stackalloc byte[144];
        return fstat(fd, buf) == 0 ? Status(buf) : null;
    }

    /// <summary>As <see cref="FileStatus(int)"/>, of what <paramref name="path"/> names itself (lstat: a symbolic link is
    /// not followed, its own st_mode says S_IFLNK).</summary>
    public static unsafe (uint Mode, ulong Links, int Uid, int Gid)? LinkStatus(string path)
    {
        byte* buf = stackalloc byte[144];
        return lstat(path, buf) == 0 ? Status(buf) : null;
    }

    private static unsafe (uint Mode, ulong Links, int Uid, int Gid) Status(byte* buf) =>
        (*(uint*)(buf + 24), *(ulong*)(buf + 16), *(int*)(buf + 28), *(int*)(buf + 32));

    public const int RLIMIT_NOFILE = 7;

    /// <summary>getrlimit(2)/setrlimit(2) on a struct rlimit: { rlim_cur, rlim_max }, two 64-bit rlim_t on LP64
    /// (RLIM_INFINITY is all ones).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int getrlimit(int resource, ulong* curMax);

    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial int setrlimit(int resource, ulong* curMax);

    /// <summary>write(2): to a descriptor this process already holds, where Console would first need a new one (dup).</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static unsafe partial nint write(int fd, byte* buf, nuint count);

    /// <summary>Writes all of <paramref name="bytes"/> to <paramref name="fd"/> (again after EINTR or a short write);
    /// false when a write fails.</summary>
    public static unsafe bool WriteAll(int fd, ReadOnlySpan<byte> bytes)
    {
        fixed (byte* p = bytes)
        {
            for (nuint done = 0; done < (nuint)bytes.Length;)
            {
                nint n = write(fd, p + done, (nuint)bytes.Length - done);
                if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
                if (n <= 0) return false;
                done += (nuint)n;
            }
        }
        return true;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int fchmod(int fd, uint mode);

}
