using System.Data.Common;
using System.Globalization;
using Alumet.Hpc.Config;
using Microsoft.Data.Sqlite;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>What differs between the accounting back ends; <see cref="AccountingDb"/> holds everything else.</summary>
public abstract class AccountingBackend
{
    /// <summary>Where the database is, for messages: never a credential.</summary>
    public abstract string Where { get; }

    /// <summary>An open connection; <paramref name="readOnly"/> never creates anything.</summary>
    internal abstract DbConnection Connect(int busyTimeoutMs, bool readOnly);

    /// <summary>The schema version; 0 for an empty database. <paramref name="tx"/> may be null.</summary>
    internal abstract int ReadVersion(DbConnection con, DbTransaction? tx);

    internal abstract void WriteVersion(DbConnection con, DbTransaction tx, int version);

    /// <summary>Serializes concurrent migrators for the rest of <paramref name="tx"/>.</summary>
    internal abstract void LockSchema(DbConnection con, DbTransaction tx);

    internal abstract string? MigrationSql(Migration m);

    /// <summary>Lock contention worth retrying at once (not an unreachable server: the outbox keeps the row then).</summary>
    internal abstract bool IsContention(DbException e);

    internal virtual void AfterMigrate(DbConnection con) { }

    /// <summary>A condition the query planner should take as selective (an index on it worth using).</summary>
    internal virtual string Selective(string condition) => condition;

    /// <summary>Why a write failed, in words for the log and <c>db flush</c> (never a stack trace).</summary>
    public virtual string Describe(Exception e) => e switch
    {
        DbException d when IsContention(d) => $"database busy: another process holds its lock ({Where})",
        UnauthorizedAccessException => $"no permission to write {Where}: {e.Message}",
        _ => $"{Where}: {e.Message}",
    };
}

/// <summary>
/// SQLite, the embedded default for one machine. Journal: WAL, so that no reader ever blocks a writer: with a rollback
/// journal a reader holds a shared lock on the file for as long as its statement runs, and a user who stopped their own
/// report (kill -STOP: it is setgid, not setuid) kept every job's row out of the database for as long as they liked
/// (README "Accounting database"). Readers are not root: a reader of a WAL database needs its -wal and -shm files to
/// exist (SQLite 3.22+ then reads with read-only access to both: no lock a writer waits for), and must never create
/// them. So every root writer keeps them when it closes (SQLITE_FCNTL_PERSIST_WAL: SQLite deletes them at the last
/// close otherwise), SQLite gives them the database file's owner and mode (root, 0640, group alumet), and a reader that
/// finds them missing does not open the file unless it owns it (<see cref="CheckReadable"/>). A database left in
/// rollback mode by an older version is switched at a writer's open when no reader holds it (<see cref="AfterMigrate"/>).
/// Write transactions take the lock up front (BEGIN IMMEDIATE, the Microsoft.Data.Sqlite default) so two writers never
/// deadlock on a lock upgrade. Never on a shared filesystem: SQLite's locking (and WAL's shared memory) over NFS is not
/// reliable (README, "Multi-node clusters").
/// </summary>
public sealed class SqliteBackend(string path) : AccountingBackend
{
    private const int SqliteBusy = 5, SqliteLocked = 6;

    public string FilePath { get; } = System.IO.Path.GetFullPath(path);

    public override string Where => FilePath;

    internal override DbConnection Connect(int busyTimeoutMs, bool readOnly)
    {
        if (readOnly && !File.Exists(FilePath)) throw new FileNotFoundException($"no accounting database at {FilePath}", FilePath);
        if (readOnly) CheckReadable();
        else CreateFile(FilePath);
        if (!readOnly) return Open(busyTimeoutMs, readOnly);
        for (int attempt = 1; ; attempt++)
        {
            var con = Open(busyTimeoutMs, readOnly);
            try
            {
                Scalar(con, "PRAGMA user_version;"); // the first read: it opens the WAL
                return con;
            }
            catch (SqliteException e) when (e.SqliteExtendedErrorCode == SqliteReadOnlyRecovery)
            {
                con.Dispose();
                if (attempt == ReadOnlyRecoveryAttempts)
                    throw new InvalidDataException("its -wal needs a recovery that only root can make (a writer was killed while it made it, "
                        + "and another process has the database open); the next job end on this node, or 'alumet-hpc db flush' run by root, makes it");
                Thread.Sleep(Random.Shared.Next(50, 150)); // apart from another report that met the same recovery
            }
            catch
            {
                con.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// SQLITE_READONLY_RECOVERY: the WAL's index (the -shm) needs rebuilding from the -wal and this reader may not write
    /// it: the writer that rebuilds it, the first to open the database, was killed in the middle (SIGKILL, a crash) while
    /// another process had the database open. A reader that finds no other process there rebuilds the index in its own
    /// memory instead, so a report opens the database again: its own connection was one such process. Another report
    /// that met the same recovery closes within the attempts; one stopped by its user keeps the index for as long as
    /// it likes, until the next root writer rebuilds it (README "Accounting database").
    /// </summary>
    private const int SqliteReadOnlyRecovery = 8 | (1 << 8), ReadOnlyRecoveryAttempts = 20;

    private SqliteConnection Open(int busyTimeoutMs, bool readOnly)
    {
        var con = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = FilePath,
            Mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWrite,
            Pooling = false, // short-lived processes; a pooled handle would keep the file open after Dispose
            ForeignKeys = false, // (the bundled SQLite turns them on) until migrated: see AfterMigrate
            DefaultTimeout = Math.Max(1, busyTimeoutMs / 1000),
        }.ToString());
        try
        {
            con.Open();
            if (!readOnly) KeepWalFiles(con);
            Exec(con, $"PRAGMA busy_timeout = {Math.Max(0, busyTimeoutMs)};");
        }
        catch
        {
            con.Dispose();
            throw;
        }
        return con;
    }

    /// <summary>
    /// A writer's open, once migrated: foreign keys on (off while migrating: v2 rebuilds the tables that reference each
    /// other), and the database in WAL mode with its -wal and -shm files made and kept. A switch from a rollback journal
    /// needs the file to itself: it is tried without waiting, and a reader that holds the file then (a report of an
    /// older version) leaves it to the next writer. The -wal is cut back to <see cref="WalSizeLimit"/> once checkpointed.
    /// </summary>
    internal override void AfterMigrate(DbConnection con)
    {
        Exec(con, "PRAGMA foreign_keys = ON;");
        Exec(con, $"PRAGMA journal_size_limit = {WalSizeLimit};");
        if (!string.Equals(Scalar(con, "PRAGMA journal_mode;"), "wal", StringComparison.OrdinalIgnoreCase))
        {
            // sqlite3_exec itself: Microsoft.Data.Sqlite's commands retry a busy statement until their timeout.
            string busy = Scalar(con, "PRAGMA busy_timeout;");
            Exec(con, "PRAGMA busy_timeout = 0;");
            int rc;
            try { rc = SQLitePCL.raw.sqlite3_exec(((SqliteConnection)con).Handle, "PRAGMA journal_mode = WAL;"); }
            finally { Exec(con, $"PRAGMA busy_timeout = {busy};"); }
            if ((rc & 0xff) is not (0 or SqliteBusy or SqliteLocked)) SqliteException.ThrowExceptionForRC(rc, ((SqliteConnection)con).Handle);
        }
        Scalar(con, "SELECT count(*) FROM sqlite_master;"); // a read opens the WAL: it makes the -wal and -shm files
        foreach (string f in WalFiles) if (File.Exists(f)) DatabaseFileAccess.Secure(f);
    }

    /// <summary>Bytes the -wal is cut back to once checkpointed (it grows while a reader holds an old snapshot).</summary>
    internal const long WalSizeLimit = 16 << 20;

    /// <summary>The WAL's two files, beside the database.</summary>
    internal string[] WalFiles => [FilePath + "-wal", FilePath + "-shm"];

    /// <summary>
    /// Refuses a read that would make SQLite create the -wal and -shm files of a WAL database in someone else's name: a
    /// file a user owned there would let them block or corrupt root's writers (README "Accounting database"). Missing,
    /// they are made again by the next root writer (a job's end, <c>alumet-hpc db flush</c>); a program other than
    /// alumet-hpc (the sqlite3 shell) deletes them when it closes the database last.
    /// </summary>
    /// <exception cref="InvalidDataException">WAL, a file missing, and the caller neither root nor the database's owner.</exception>
    private void CheckReadable()
    {
        if (!IsWal(FilePath) || WalFiles.All(File.Exists)) return;
        uint me = Native.Libc.getuid();
        if (me == 0 || Native.Libc.StatLink(FilePath) is { } o && o.Uid == me) return;
        throw new InvalidDataException($"its -wal and -shm files are missing (a program other than alumet-hpc, such as sqlite3, "
            + "closed it last); the next job end on this node, or 'alumet-hpc db flush' run by root, makes them again");
    }

    /// <summary>Whether the file's header says WAL (read and write versions 2, bytes 18-19); false when unreadable.</summary>
    private static bool IsWal(string path)
    {
        try
        {
            using var f = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            Span<byte> header = stackalloc byte[20];
            return RandomAccess.Read(f, header, 0) == 20 && header[18] == 2 && header[19] == 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>SQLITE_FCNTL_PERSIST_WAL on a writer's connection: its close leaves the -wal and -shm files for the readers.</summary>
    private static void KeepWalFiles(SqliteConnection con)
    {
        int on = 1;
        int rc = SqliteNative.sqlite3_file_control(con.Handle!.DangerousGetHandle(), "main", SqliteNative.FcntlPersistWal, ref on);
        if (rc != 0) throw new InvalidOperationException($"SQLite refused SQLITE_FCNTL_PERSIST_WAL (error {rc})");
    }

    private static string Scalar(DbConnection con, string sql)
    {
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToString(cmd.ExecuteScalar(), CultureInfo.InvariantCulture) ?? "";
    }

    internal override int ReadVersion(DbConnection con, DbTransaction? tx)
    {
        using var cmd = con.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "PRAGMA user_version;";
        return Convert.ToInt32(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    internal override void WriteVersion(DbConnection con, DbTransaction tx, int version)
    {
        using var cmd = con.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"PRAGMA user_version = {version};";
        cmd.ExecuteNonQuery();
    }

    internal override void LockSchema(DbConnection con, DbTransaction tx) { } // BEGIN IMMEDIATE already holds the write lock

    internal override string? MigrationSql(Migration m) => m.Sql;

    /// <summary>likelihood(X, p): SQLite's planner hint; its index analysis looks through it, so X still uses an index.</summary>
    internal override string Selective(string condition) => $"likelihood({condition}, 0.01)";

    internal override bool IsContention(DbException e) => e is SqliteException { SqliteErrorCode: SqliteBusy or SqliteLocked };

    private static void Exec(DbConnection con, string sql)
    {
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static void CreateFile(string path)
    {
        if (System.IO.Path.GetDirectoryName(path) is { } dir) DatabaseFileAccess.CreateDirectory(dir);
        // Root writes no database a user could have planted or could swap: the row waits in the outbox, saying why.
        if (Jobs.RootOnly.DatabaseRefused(path) is { } refused) throw new IOException($"not used: {refused}");
        if (!File.Exists(path))
        {
            try
            {
                // 0640 (DatabaseFileAccess): root writes, the alumet group (alumet-report's gate) reads, others nothing.
                using var _ = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = DatabaseFileAccess.FileMode,
                });
            }
            catch (IOException) when (File.Exists(path))
            {
                // another writer created it first
            }
        }
        DatabaseFileAccess.Secure(path);
    }
}

/// <summary>The SQLite call Microsoft.Data.Sqlite does not expose, into the library it loads (e_sqlite3).</summary>
internal static partial class SqliteNative
{
    public const int FcntlPersistWal = 10;

    [System.Runtime.InteropServices.LibraryImport("e_sqlite3", StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    public static partial int sqlite3_file_control(IntPtr db, string name, int op, ref int arg);
}

/// <summary>The back end a configuration names.</summary>
public static class AccountingBackends
{
    /// <exception cref="InvalidDataException">A bad url (the config check refuses it first).</exception>
    public static AccountingBackend For(AlumetConfig cfg) =>
        cfg.Database.Url.Length == 0 ? new SqliteBackend(cfg.Paths.Database)
        : new PostgresBackend(DatabaseUrl.TryParse(cfg.Database.Url, cfg.Database.PasswordFile, out string? e)
            ?? throw new InvalidDataException($"[database] url {e}"));
}
