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

    [LibraryImport("libc", EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int stat_path(string path, byte* buf);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int lstat(string path, byte* buf);

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int fstat(int fd, byte* buf);

    public const int ENOENT = 2, ENOTDIR = 20;

    /// <summary>st_mode's file type (S_IFMT) and the types the callers test.</summary>
    public const uint S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFLNK = 0xA000;

    /// <summary>
    /// What the callers use of a struct stat (<see cref="StatPath(string)"/>, <see cref="StatLink"/>,
    /// <see cref="StatFd(int)"/>): device and inode, st_mode (type and permission bits), link count, owner and group,
    /// mtime and ctime (ns since the epoch). On cgroupfs and cgroup2fs (kernfs), ext4, tmpfs and xfs a directory's link
    /// count is 2 + its subdirectories (checked on v1 and v2 here: mkdir/rmdir of a child moves it; kernfs leaves mtime
    /// alone); btrfs and others say 1, which no listing matches.
    /// </summary>
    public readonly record struct FileStatus(ulong Dev, ulong Ino, uint Mode, ulong Links, uint Uid, uint Gid, long MtimeNs, long CtimeNs)
    {
        /// <summary>Which file it is: the same for every path and descriptor that lead to it.</summary>
        public (ulong Dev, ulong Ino) Id => (Dev, Ino);

        public (uint Uid, uint Gid) Owner => (Uid, Gid);

        public bool IsRegular => (Mode & S_IFMT) == S_IFREG;
        public bool IsDirectory => (Mode & S_IFMT) == S_IFDIR;
        public bool IsSymbolicLink => (Mode & S_IFMT) == S_IFLNK;
    }

    /// <summary>Room for either struct stat decoded here (144 and 128 bytes).</summary>
    private const int StatBytes = 256;

    /// <summary>
    /// The fields of a struct stat filled by the libc of <paramref name="abi"/>, or null where its layout is not known
    /// here. Both are little-endian LP64; offsets in bytes:
    /// <code>
    ///                x86-64 (glibc bits/struct_stat.h,     arm64 (asm-generic/stat.h; glibc's
    ///                the __x86_64__ branch; 144 bytes)     sysdeps/unix/sysv/linux/generic/bits/struct_stat.h,
    ///                                                      which aarch64 uses, on LP64; 128 bytes)
    ///   st_dev       0   unsigned long                     0   unsigned long
    ///   st_ino       8   unsigned long                     8   unsigned long
    ///   st_nlink     16  unsigned long                     20  unsigned int   (after st_mode)
    ///   st_mode      24  unsigned int                      16  unsigned int
    ///   st_uid       28  unsigned int                      24  unsigned int
    ///   st_gid       32  unsigned int (then int __pad0)    28  unsigned int
    ///   st_rdev      40                                    32  (then unsigned long __pad1)
    ///   st_size      48                                    48
    ///   st_blksize   56  long                              56  int (then int __pad2)
    ///   st_blocks    64                                    64
    ///   st_atim      72  struct timespec {long, long}      72
    ///   st_mtim      88                                    88
    ///   st_ctim      104                                   104
    ///   reserved     120 long[3]                           120 int[2]
    /// </code>
    /// A pure function of the bytes, so that either layout is tested on any machine.
    /// </summary>
    public static FileStatus? DecodeStat(ReadOnlySpan<byte> buf, Architecture abi) => abi switch
    {
        Architecture.X64 => new FileStatus(U64(buf, 0), U64(buf, 8), U32(buf, 24), U64(buf, 16), U32(buf, 28), U32(buf, 32), Ns(buf, 88), Ns(buf, 104)),
        Architecture.Arm64 => new FileStatus(U64(buf, 0), U64(buf, 8), U32(buf, 16), U32(buf, 20), U32(buf, 24), U32(buf, 28), Ns(buf, 88), Ns(buf, 104)),
        _ => null,
    };

    private static ulong U64(ReadOnlySpan<byte> buf, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(buf[at..]);
    private static uint U32(ReadOnlySpan<byte> buf, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(buf[at..]);

    /// <summary>A struct timespec at <paramref name="at"/> in ns.</summary>
    private static long Ns(ReadOnlySpan<byte> buf, int at) => (long)U64(buf, at) * 1_000_000_000 + (long)U64(buf, at + 8);

    private enum StatCall { Path, Link, Fd }

    /// <summary>The one struct stat reader: stat(2), lstat(2) or fstat(2), decoded by <see cref="DecodeStat"/>; null with
    /// its errno on failure, or with 0 where this ABI's struct stat is not known here (not stat'ed).</summary>
    private static unsafe FileStatus? Stat(StatCall call, string? path, int fd, out int errno)
    {
        errno = 0;
        var abi = RuntimeInformation.ProcessArchitecture;
        if (abi is not (Architecture.X64 or Architecture.Arm64)) return null;
        byte* buf = stackalloc byte[StatBytes];
        int rc = call switch
        {
            StatCall.Path => stat_path(path!, buf),
            StatCall.Link => lstat(path!, buf),
            _ => fstat(fd, buf),
        };
        if (rc != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return null;
        }
        return DecodeStat(new ReadOnlySpan<byte>(buf, StatBytes), abi);
    }

    /// <summary>stat(2) of <paramref name="path"/> (symbolic links followed), or null with its errno (0: this ABI's struct
    /// stat is not known here, not stat'ed).</summary>
    public static FileStatus? StatPath(string path, out int errno) => Stat(StatCall.Path, path, -1, out errno);

    /// <inheritdoc cref="StatPath(string, out int)"/>
    public static FileStatus? StatPath(string path) => StatPath(path, out _);

    /// <summary>lstat(2): what <paramref name="path"/> names itself (a symbolic link is not followed, its own st_mode says
    /// S_IFLNK), or null with its errno (0 as <see cref="StatPath(string, out int)"/>).</summary>
    public static FileStatus? StatLink(string path, out int errno) => Stat(StatCall.Link, path, -1, out errno);

    /// <inheritdoc cref="StatLink(string, out int)"/>
    public static FileStatus? StatLink(string path) => StatLink(path, out _);

    /// <summary>fstat(2) of an open file (the file itself, whatever path led to it), or null with its errno (0 as
    /// <see cref="StatPath(string, out int)"/>).</summary>
    public static FileStatus? StatFd(int fd, out int errno) => Stat(StatCall.Fd, null, fd, out errno);

    /// <inheritdoc cref="StatFd(int, out int)"/>
    public static FileStatus? StatFd(int fd) => StatFd(fd, out _);

    /// <inheritdoc cref="StatFd(int, out int)"/>
    public static FileStatus? StatFd(Microsoft.Win32.SafeHandles.SafeFileHandle handle) => StatFd((int)handle.DangerousGetHandle());

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
