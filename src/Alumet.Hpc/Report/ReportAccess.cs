using System.Runtime.InteropServices;
using Alumet.Hpc.Config;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Report;

/// <summary>The caller as the kernel knows it (real uid, real gid, supplementary groups); never from the environment.</summary>
public sealed record Caller(int Uid, int Gid, IReadOnlyList<int> Groups)
{
    public bool IsRoot => Uid == 0;

    public static unsafe Caller Current()
    {
        int n = Libc.getgroups(0, null);
        var groups = new uint[Math.Max(n, 0)];
        if (n > 0)
            fixed (uint* p = groups) n = Libc.getgroups(groups.Length, p);
        return new Caller((int)Libc.getuid(), (int)Libc.getgid(), groups.Take(Math.Max(n, 0)).Select(g => (int)g).ToList());
    }
}

/// <summary>The caller's home directory from the user database (NSS), not from <c>$HOME</c>, which the gate clears.</summary>
public static partial class CallerHome
{
    [LibraryImport("libc", EntryPoint = "getpwuid", SetLastError = false)]
    private static partial IntPtr getpwuid(uint uid);

    /// <summary>pw_dir of the real uid (offset 32 on LP64: name, passwd, uid/gid, gecos, dir), or null.</summary>
    public static string? Directory()
    {
        IntPtr entry = getpwuid(Libc.getuid());
        if (entry == IntPtr.Zero) return null;
        return Marshal.ReadIntPtr(entry, 32) is var dir && dir != IntPtr.Zero ? Marshal.PtrToStringUTF8(dir) : null;
    }

    /// <summary>
    /// The process environment, with <c>HOME</c> from the user database when it is missing: the gate builds a fresh
    /// environment, and without HOME the per-user database of <c>alumet-hpc exec</c> (under ~/.local/share) was never found.
    /// Only for reading after the group was given up.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Environment()
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry e in System.Environment.GetEnvironmentVariables())
            if (e.Key is string k && e.Value is string v) env[k] = v;
        if (!env.ContainsKey("HOME") && Directory() is { Length: > 0 } home) env["HOME"] = home;
        return env;
    }
}

/// <summary>
/// Who may see every user's jobs: root, the users of <c>[report] admins</c> and the members of <c>[report] admin_groups</c>
/// of the system config, resolved to uids and gids through NSS (so a renamed or LDAP account is matched by id).
/// Only the system config is ever passed here: an admin list a user supplies grants nothing.
/// </summary>
public sealed record ReportAdmins(IReadOnlySet<int> Uids, IReadOnlySet<int> Gids)
{
    public static readonly ReportAdmins RootOnly = new(new HashSet<int> { 0 }, new HashSet<int>());

    public static ReportAdmins Resolve(ReportSection section)
    {
        var uids = new HashSet<int> { 0 };
        foreach (var name in section.Admins)
            if (Id(Libc.getpwnam(name)) is { } uid) uids.Add(uid);
        var gids = new HashSet<int>();
        foreach (var name in section.AdminGroups)
            if (Id(Libc.getgrnam(name)) is { } gid) gids.Add(gid);
        return new ReportAdmins(uids, gids);
    }

    public bool Includes(Caller c) => c.IsRoot || Uids.Contains(c.Uid) || Gids.Contains(c.Gid) || c.Groups.Any(Gids.Contains);

    /// <summary>pw_uid / gr_gid: both at offset 16 on LP64, after the name and password pointers.</summary>
    private static int? Id(IntPtr entry) => entry == IntPtr.Zero ? null : Marshal.ReadInt32(entry, 16);
}

/// <summary>
/// The report's one privilege: membership of the group that owns the accounting database, held as the effective gid
/// when <c>alumet-report</c> is the setgid gate (src/report-gate: it clears the environment, then runs this
/// binary). It is used only to open the database of the system config, and given up for good before anything a
/// user chose (a config file, <c>--db</c>, a per-user database) is read.
/// </summary>
public static class ReportPrivilege
{
    /// <summary>The group that owns the accounting database (0640) and that alumet-report is setgid to (README, Install).</summary>
    public const string Group = "alumet";

    /// <summary>Set by the gate to the system config it was built for (tests build one for a temporary installation).</summary>
    public const string SystemConfigVariable = "ALUMET_HPC_SYSTEM_CONFIG";

    /// <summary>True while this process holds a group that its caller does not have (setgid gate).</summary>
    public static bool Held => Libc.getegid() != Libc.getgid();

    /// <summary>Gives up the gate's group for good (real, effective and saved gid).</summary>
    /// <exception cref="UnauthorizedAccessException">The kernel refused (never expected).</exception>
    public static void Drop()
    {
        if (!Held) return;
        uint g = Libc.getgid();
        if (Libc.setresgid(g, g, g) != 0 || Held)
            throw new UnauthorizedAccessException("could not give up the alumet group (setresgid failed)");
    }

    /// <summary>
    /// True when this binary itself carries a set-id bit. The gate is the only supported way to hold the group: it
    /// clears the environment the .NET runtime and SQLite read; a setgid alumet-hpc would have read the caller's.
    /// </summary>
    public static bool OwnBinaryIsSetId()
    {
        try
        {
            return Environment.ProcessPath is { } exe
                && (File.GetUnixFileMode(exe) & (UnixFileMode.SetGroup | UnixFileMode.SetUser)) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true; // cannot tell: assume the worst
        }
    }

    /// <summary>
    /// The system config: /etc/alumet-hpc/alumet.toml, or the path the gate was built with (it sets the variable in the
    /// environment it builds from scratch). Without the gate's group the variable is the caller's own and is ignored.
    /// </summary>
    public static string SystemConfigPath() =>
        Held && Environment.GetEnvironmentVariable(SystemConfigVariable) is { Length: > 1 } p && p[0] == '/' && !OwnBinaryIsSetId()
            ? p : ConfigLoader.SystemPath;
}
