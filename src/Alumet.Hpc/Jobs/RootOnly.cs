using System.Runtime.InteropServices;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// <c>sample</c>, <c>node-sampler</c> and <c>ctl</c> work on root's node state: its state dir and the node sampler's
/// socket, whose directory is 0700 (README "The node sampler"). Run by another user against those paths, each says so in
/// one sentence, with <see cref="ExitCode"/>, before it does anything (it printed the runtime's access-denied text, or
/// nothing). A user whose config points at paths of their own (a developer's test install) is not refused: the rule is
/// the paths, not the uid.
/// </summary>
public static class RootOnly
{
    /// <summary>EX_NOPERM (sysexits.h): distinct from a failed run (1) and a command line or config error (2).</summary>
    public const int ExitCode = 77;

    /// <summary>
    /// The first existing path on the way to <paramref name="path"/> (itself, else its nearest existing parent) when the
    /// caller's real uid may not use it (<c>access(2)</c> bits: <paramref name="mode"/> on the path itself,
    /// <paramref name="parentMode"/> on a parent); null for root, or when it may.
    /// </summary>
    public static string? Denied(string path, int mode, int parentMode)
    {
        if (Libc.getuid() == 0) return null;
        string? p = Path.GetFullPath(path);
        // access(F_OK) fails with EACCES as well as ENOENT below a directory the caller may not search: go up past both.
        while (p is not null && Libc.access(p, Libc.F_OK) != 0) p = Path.GetDirectoryName(p);
        if (p is null) return null;
        return Libc.access(p, p == Path.GetFullPath(path) ? mode : parentMode) == 0 ? null : p;
    }

    /// <summary>Where the caller may not write the state a sampler keeps under <paramref name="stateRoot"/>
    /// (<paramref name="under"/>: its subdirectory), or null.</summary>
    private static string? DeniedStateDir(string stateRoot, string under) =>
        Denied(Path.Combine(stateRoot, under), Libc.W_OK | Libc.X_OK, Libc.W_OK | Libc.X_OK);

    /// <summary>Whether <paramref name="denied"/> (the path <see cref="Denied"/> found, or null) refuses the command; if so
    /// the one sentence is on stderr: <paramref name="command"/> ("program: verb"), the path, then <paramref name="why"/>
    /// (who must run it, and how).</summary>
    public static bool Refuse(string command, string? denied, string why)
    {
        if (denied is null) return false;
        Console.Error.WriteLine($"{command}: permission denied on {denied}: {why}");
        return true;
    }

    /// <summary>
    /// Whether a root-only command refuses <paramref name="stateDir"/>: another user may not write <paramref name="under"/>
    /// in it (<see cref="Refuse"/>, <paramref name="why"/>), or for root it is one a user could have planted
    /// (<see cref="StateDirRefused"/>). If so, the one sentence is on stderr, after <paramref name="command"/>.
    /// </summary>
    public static bool RefuseStateDir(string command, string stateDir, string under, string why)
    {
        if (Refuse(command, DeniedStateDir(stateDir, under), why)) return true;
        if (StateDirRefused(stateDir) is not { } refused) return false;
        Console.Error.WriteLine($"{command}: {refused}");
        return true;
    }

    /// <summary>Where the caller may not reach the node sampler's socket (write to it, or search a directory on the way), or null.</summary>
    public static string? DeniedSocket(string socketPath) => Denied(socketPath, Libc.W_OK, Libc.X_OK);

    private const string RootOnlyFix = "or choose a directory only root can write";

    /// <summary>
    /// Opens <paramref name="path"/> (open(2) <paramref name="flags"/> and <paramref name="mode"/>, plus O_NOFOLLOW and
    /// O_CLOEXEC); with O_CREAT, missing directories are made (0755 less the umask).
    /// <para>Root (the hooks, the node sampler) uses nothing a user could have planted or could swap (README
    /// "Configuration", Logs): no symbolic link anywhere on the path; every directory, from / down, owned by root and
    /// writable by others only with the sticky bit (/tmp: nobody may rename or remove what is root's there), by its group
    /// only when that group is root's; the file itself owned by root, with one name (st_nlink 1: no hard link to a file of
    /// anyone's). The directories are checked by path (lstat), each below one that passed: once a directory passed, no
    /// user can rename, replace or add a link in what it holds that passed, so the open resolves the very directories
    /// checked; the file is checked on the descriptor the open returned (fstat), whatever was there before. One
    /// descriptor at a time (a walk of openat would hold two): a hook under a small RLIMIT_NOFILE still logs.
    /// Another user opens their own paths as before: directories through links, the file not.</para>
    /// </summary>
    /// <param name="status">The descriptor's fstat, the one root's check read: the caller need not fstat it again. Null
    /// with -1, and where fstat failed (only another user's open goes on then).</param>
    /// <param name="why">When it returns -1: one sentence, what is wrong and how to fix it.</param>
    /// <returns>The open descriptor (the caller closes it), or -1.</returns>
    internal static int OpenUnplanted(string path, int flags, int mode, out Libc.FileStatus? status, out string why)
    {
        status = null;
        bool root = Libc.getuid() == 0, create = (flags & Libc.O_CREAT) != 0;
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (dir is null || full.EndsWith('/')) { why = $"{full} is a directory (give a file's path)"; return -1; }
        if (root && PlantedDirectory(dir, create) is { } swappable) { why = swappable; return -1; }
        if (!root && create)
        {
            try { Directory.CreateDirectory(dir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { why = $"cannot make directory {dir} ({e.Message})"; return -1; }
        }
        int fd = Libc.open_mode(full, flags | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, mode);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            why = errno == ELoop && Libc.StatLink(full) is { IsSymbolicLink: true }
                ? $"{full} is a symbolic link, which is not followed (give the real path)"
                : $"cannot open {full} ({Error(errno)})";
            return -1;
        }
        status = Libc.StatFd(fd, out int statErrno);
        if (root && (status is { } opened ? Planted(opened, full, directory: false) : CannotStat(full, statErrno)) is { } planted)
        {
            status = null;
            Libc.close(fd);
            why = planted;
            return -1;
        }
        why = "";
        return fd;
    }

    /// <summary>The directories root makes and writes in <c>state_dir</c>: the node's (lock, pid file, socket, the node's
    /// series), the schedulers' and exec's (every job's spool and marker), the outbox of rows, OAR's starter records.</summary>
    private static readonly string[] StateSubdirectories =
    [
        Spool.NodeSpool.Directory, Schedulers.SchedulerNames.Slurm, Schedulers.SchedulerNames.Oar, Schedulers.SchedulerNames.Exec,
        Outputs.Accounting.Outbox.DirectoryName, Schedulers.Oar.OarStarterRecord.DirectoryName,
    ];

    /// <summary>
    /// For root: one sentence, "[paths] state_dir D not used: why (how to fix)", when <paramref name="stateDir"/> is one a
    /// user could have planted or could swap, by <see cref="OpenUnplanted"/>'s rule for directories (checked from / down,
    /// those missing made, root's, 0755 less the umask), or when a directory root makes in it (<see cref="StateSubdirectories"/>)
    /// is a symbolic link or fails that rule (made while state_dir was open to users); null when root may use it, and
    /// for any other user (a user's own <c>exec</c> keeps its state in its own state_dir). Once every directory on the way
    /// passed, no user can change what root finds below it.
    /// </summary>
    public static string? StateDirRefused(string stateDir)
    {
        if (Libc.getuid() != 0) return null;
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(stateDir));
        string? why = PlantedDirectory(full, create: true, out bool unusable);
        if (unusable) return null; // the command says so in its own words when it uses it: nothing of a user's there
        foreach (string name in StateSubdirectories)
        {
            if (why is not null) break;
            string at = Path.Combine(full, name);
            // Not there, or not a directory (root then fails to use it, as before): nothing a user could have planted.
            if (Libc.StatLink(at) is not { } status) continue;
            why = status.IsSymbolicLink ? $"{at} is a symbolic link, which is not followed (remove it)"
                : status.IsDirectory ? Planted(status, at, directory: true) : null;
        }
        return why is null ? null : $"[paths] state_dir {full} not used: {why}";
    }

    /// <summary>
    /// For root: why root may not write the SQLite database <paramref name="database"/>, or null (and for any other
    /// user). Its directory (made before, 0751: DatabaseFileAccess) by <see cref="OpenUnplanted"/>'s rule for
    /// directories, and the database, its -wal, -shm and -journal when there: not a symbolic link, root's. A directory
    /// that cannot be stat'ed is left to SQLite's own words.
    /// </summary>
    public static string? DatabaseRefused(string database)
    {
        if (Libc.getuid() != 0) return null;
        string full = Path.GetFullPath(database);
        string? why = PlantedDirectory(Path.GetDirectoryName(full) ?? "/", create: false, out bool unusable);
        if (unusable) return null;
        foreach (string at in new[] { full, full + "-wal", full + "-shm", full + "-journal" })
        {
            if (why is not null) break;
            if (Libc.StatLink(at) is not { } status) continue;
            why = status.IsSymbolicLink ? $"{at} is a symbolic link, which is not followed (remove it, {RootOnlyFix})"
                : status.Uid != 0 ? $"{at} is owned by uid {status.Uid}, not root (remove it, {RootOnlyFix})" : null;
        }
        return why;
    }

    /// <summary>Why root may not use <paramref name="dir"/> or a directory above it (<see cref="OpenUnplanted"/>), or
    /// null; those missing are made when <paramref name="create"/>.</summary>
    private static string? PlantedDirectory(string dir, bool create) => PlantedDirectory(dir, create, out _);

    /// <inheritdoc cref="PlantedDirectory(string, bool)"/>
    /// <param name="unusable">Whether the reason is one that fails root too (a directory that cannot be made or
    /// stat'ed, a path through a file): nothing a user could have planted.</param>
    private static string? PlantedDirectory(string dir, bool create, out bool unusable)
    {
        unusable = true;
        string at = "/";
        foreach (string name in dir.Split('/', StringSplitOptions.RemoveEmptyEntries).Prepend(""))
        {
            at = Path.Combine(at, name);
            var status = Libc.StatLink(at, out int errno);
            if (status is null && errno == Libc.ENOENT && create)
            {
                if (Libc.mkdir(at, 0b111_101_101) != 0 && Marshal.GetLastPInvokeError() is var e && e != EExist)
                    return $"cannot make directory {at} ({Error(e)})";
                status = Libc.StatLink(at, out errno);
            }
            if (status is not { } s) return $"cannot open {at} ({Error(errno)})";
            if (s.IsSymbolicLink) { unusable = false; return $"{at} is a symbolic link, which is not followed (give the real path)"; }
            if (!s.IsDirectory) return $"{at} is not a directory";
            if (Planted(s, at, directory: true) is { } bad) { unusable = false; return bad; }
        }
        unusable = false;
        return null;
    }

    private const int EExist = 17, ELoop = 40;

    private static string CannotStat(string at, int errno) => $"cannot stat {at} ({Error(errno)})";

    /// <summary>Why root may not use what <paramref name="status"/> (lstat or fstat) describes, or null.</summary>
    private static string? Planted(Libc.FileStatus status, string at, bool directory)
    {
        const uint Sticky = 0b001_000_000_000, GroupWrite = 0b000_010_000, OtherWrite = 0b000_000_010;
        var (mode, links, uid, gid) = (status.Mode, status.Links, status.Uid, status.Gid);
        string what = directory ? $"directory {at}" : at;
        if (uid != 0) return $"{what} is owned by uid {uid}, not root (chown root {at}, {RootOnlyFix})";
        if (!directory) return links == 1 ? null : $"{at} has {links} names, hard links (remove the others, or choose another path)";
        if ((mode & Sticky) != 0) return null;
        string octal = Convert.ToString((int)(mode & 0xFFF), 8).PadLeft(4, '0');
        if ((mode & OtherWrite) != 0) return $"{what} is writable by others without the sticky bit, mode {octal} (chmod o-w {at}, {RootOnlyFix})";
        if ((mode & GroupWrite) != 0 && gid != 0) return $"{what} is writable by group {gid}, mode {octal} (chmod g-w {at}, {RootOnlyFix})";
        return null;
    }

    private static string Error(int errno) => new System.ComponentModel.Win32Exception(errno).Message;
}
