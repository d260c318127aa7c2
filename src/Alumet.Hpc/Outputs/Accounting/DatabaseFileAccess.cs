using System.Runtime.InteropServices;
using Alumet.Hpc.Core;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>
/// Who can open the accounting database file: root writes it, the group <c>alumet</c> reads it (0640), nobody else.
/// Users read their own rows through alumet-report, which holds that group through its setgid gate and filters by
/// uid (README, Install). The directory loses its listing bit for others (0751) but keeps traversal, because the
/// default data_dir and state_dir live beneath it and users open their own Parquet files there.
/// SQLite gives the WAL's -wal and -shm files (and a rollback journal) the database file's mode and owner, so they are
/// no wider; the writers apply <see cref="Secure"/> to them too (SqliteBackend.AfterMigrate).
/// </summary>
internal static class DatabaseFileAccess
{
    public const string Group = Report.ReportPrivilege.Group;

    /// <summary>rw-r-----</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;

    /// <summary>rwxr-x--x</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private static bool _warnedNoGroup;

    /// <summary>Creates the database's directory (0751, group alumet when root) if missing.</summary>
    public static void CreateDirectory(string dir)
    {
        if (Directory.Exists(dir)) return;
        Directory.CreateDirectory(dir, DirectoryMode);
        File.SetUnixFileMode(dir, DirectoryMode); // umask may have narrowed it
        if (IsRoot && GroupId() is { } gid) Libc.chown(dir, -1, gid);
    }

    /// <summary>
    /// Applied by every root writer on open, so that a database created by an older version (0644) is closed too:
    /// the file becomes 0640 group alumet; its owner is left as it is. An existing directory is not changed (it may be
    /// /var/lib or /tmp): README's install step creates it 0751.
    /// </summary>
    public static void Secure(string path)
    {
        if (!IsRoot) return;
        if (GroupId() is { } gid)
        {
            if (Libc.chown(path, -1, gid) != 0)
                Log.Warn($"cannot give {path} to group {Group} (errno {Marshal.GetLastPInvokeError()}): alumet-report cannot read it for users");
        }
        else if (!_warnedNoGroup)
        {
            _warnedNoGroup = true;
            Log.Warn($"group {Group} does not exist: {path} stays readable by root only; create it (groupadd --system {Group}) and install alumet-report as README says");
        }
        if (File.GetUnixFileMode(path) != FileMode) File.SetUnixFileMode(path, FileMode);
    }

    private static bool IsRoot => Libc.getuid() == 0;

    private static int? GroupId()
    {
        IntPtr g = Libc.getgrnam(Group);
        return g == IntPtr.Zero ? null : Marshal.ReadInt32(g, 16);
    }
}
