using System.Runtime.InteropServices;
using Alumet.Hpc.Native;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>
/// The node's key for job file names, <c>&lt;state_dir&gt;/dataset.key</c>: 32 random bytes, owned by the process's
/// user (root for the node sampler, the user for their own <c>exec</c>), mode 0600, made once. A job file's name ends
/// in a tag keyed by it (<see cref="ParquetDataset.JobFile(Config.PathsSection, Spool.SpoolMeta)"/>), so that nobody
/// who lacks it can <c>stat</c> a guessed name in the 0711 dataset and learn whose job ran where (README "Parquet
/// dataset"; notes/s10/report.md item 8).
/// <para>Made atomically: the bytes are written and synced under a temporary name, then hard-linked to the key's name,
/// which fails when another process got there first (two finalizers racing end with the first one's key, read back).
/// Read without following a link (O_NOFOLLOW) and only when it is a regular file of ours, closed to others, of 32
/// bytes: any other thing at that path is refused with one sentence, never read, replaced or removed.</para>
/// </summary>
public static partial class DatasetKey
{
    public const string FileName = "dataset.key";
    public const int Length = 32;
    private const string Fix = "remove it and the next finalization makes a new key";

    /// <summary>The key under <paramref name="stateDir"/>, made when there is none.</summary>
    /// <exception cref="IOException">One sentence: the file is refused, or cannot be read or made.</exception>
    public static byte[] Load(string stateDir)
    {
        string path = Path.Combine(stateDir, FileName);
        if (TryRead(path) is { } key) return key;
        Create(path);
        return TryRead(path) ?? throw new IOException($"the dataset key {path} was removed while it was being made; finalize again");
    }

    /// <summary>The key at <paramref name="path"/>, or null when there is none.</summary>
    private static byte[]? TryRead(string path)
    {
        const int ONonBlock = 0x800, ENoEnt = 2, ELoop = 40; // O_NONBLOCK: a FIFO planted there must not hold a finalizer
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | ONonBlock);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == ENoEnt) return null;
            throw new IOException(errno == ELoop
                ? $"the dataset key {path} is a symbolic link, which is never followed: {Fix}"
                : $"cannot open the dataset key {path} ({Error(errno)}): check [paths] state_dir");
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        const uint Others = 0b000_111_111;
        if (Libc.StatFd(fd, out int statErrno) is not { } status)
            throw new IOException($"cannot stat the dataset key {path} ({Error(statErrno)}): check [paths] state_dir");
        if (!status.IsRegular) throw new IOException($"the dataset key {path} is not a regular file: {Fix}");
        uint me = Libc.getuid();
        if (status.Uid != me) throw new IOException($"the dataset key {path} is owned by uid {status.Uid}, not {me}: {Fix}");
        if ((status.Mode & Others) != 0)
            throw new IOException($"the dataset key {path} is open to other users (mode {Convert.ToString((int)(status.Mode & 0b111_111_111), 8)}, not 600): {Fix}");
        var key = new byte[Length + 1];
        int n = 0;
        for (int r; n < key.Length && (r = RandomAccess.Read(handle, key.AsSpan(n), n)) > 0;) n += r;
        if (n != Length) throw new IOException($"the dataset key {path} holds {(n > Length ? "more than 32" : $"{n}")} bytes, not 32: {Fix}");
        return key[..Length];
    }

    /// <summary>Writes a new key aside and links it to <paramref name="path"/>; the link fails when a key is there already.</summary>
    private static void Create(string path)
    {
        const int OWrOnly = 1, OExcl = 0x80, EExist = 17;
        string temp = Core.AtomicFile.TempPath(path);
        int fd = Libc.open_mode(temp, OWrOnly | Libc.O_CREAT | OExcl | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0b110_000_000);
        if (fd < 0)
            throw new IOException($"cannot make the dataset key {path} ({Error(Marshal.GetLastPInvokeError())}): [paths] state_dir must be writable by uid {Libc.getuid()}");
        try
        {
            using (var handle = new SafeFileHandle(fd, ownsHandle: true))
            {
                RandomAccess.Write(handle, RandomBytes(Length, path), 0);
                if (Libc.fsync(fd) != 0) // the bytes are on disk before the name is: a crash never leaves an empty key
                    throw new IOException($"cannot make the dataset key {path} (fsync: {Error(Marshal.GetLastPInvokeError())})");
            }
            if (link(temp, path) != 0 && Marshal.GetLastPInvokeError() is var errno && errno != EExist)
                throw new IOException($"cannot make the dataset key {path} ({Error(errno)}): [paths] state_dir must be writable by uid {Libc.getuid()}");
        }
        finally
        {
            unlink(temp);
        }
        SyncDirectory(Path.GetDirectoryName(path)!); // the name itself survives a crash: the names made with it stay the names
    }

    /// <summary>
    /// <paramref name="count"/> bytes from the kernel's CSPRNG (getrandom(2), blocking until it is seeded), not
    /// RandomNumberGenerator: in the NativeAOT binary that loads and initialises OpenSSL (libssl, libcrypto) into the
    /// finalize-job child that makes the key, +4 MB of peak RSS (docs/performance-log.md, 2026-12-03).
    /// </summary>
    private static unsafe byte[] RandomBytes(int count, string path)
    {
        const int EIntr = 4;
        var bytes = new byte[count];
        fixed (byte* p = bytes)
            for (int n = 0; n < count;)
            {
                nint r = getrandom(p + n, (nuint)(count - n), 0);
                if (r > 0) n += (int)r;
                else if (r < 0 && Marshal.GetLastPInvokeError() is var errno && errno != EIntr)
                    throw new IOException($"cannot make the dataset key {path} (getrandom: {Error(errno)})");
            }
        return bytes;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial nint getrandom(byte* buffer, nuint length, uint flags);

    private static void SyncDirectory(string dir)
    {
        int fd = Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0) return;
        Libc.fsync(fd);
        Libc.close(fd);
    }

    private static string Error(int errno) => new System.ComponentModel.Win32Exception(errno).Message;

    /// <summary>link(2): never replaces an existing name (EEXIST), which is what "made once" needs (rename would replace).</summary>
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int link(string oldPath, string newPath);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int unlink(string path);
}
