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
    public static string? DeniedStateDir(string stateRoot, string under) =>
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

    /// <summary>Where the caller may not reach the node sampler's socket (write to it, or search a directory on the way), or null.</summary>
    public static string? DeniedSocket(string socketPath) => Denied(socketPath, Libc.W_OK, Libc.X_OK);
}
