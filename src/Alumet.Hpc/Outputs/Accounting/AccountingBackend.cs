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
/// SQLite, the embedded default for one machine. Journal: rollback (DELETE), deliberately not WAL: a non-root
/// reader of a WAL database must create or write the -shm/-wal files, so once the last writer has closed, a
/// non-root reader in the root-owned directory fails with SQLITE_READONLY (tested with sqlite 3.40); a rollback
/// journal needs only read access for readers. Write transactions take the lock up front (BEGIN IMMEDIATE, the
/// Microsoft.Data.Sqlite default) so two writers never deadlock on a lock upgrade. Never on a shared filesystem:
/// SQLite's locking over NFS is not reliable (README, "Multi-node clusters").
/// </summary>
public sealed class SqliteBackend(string path) : AccountingBackend
{
    private const int SqliteBusy = 5, SqliteLocked = 6;

    public string FilePath { get; } = System.IO.Path.GetFullPath(path);

    public override string Where => FilePath;

    internal override DbConnection Connect(int busyTimeoutMs, bool readOnly)
    {
        if (readOnly && !File.Exists(FilePath)) throw new FileNotFoundException($"no accounting database at {FilePath}", FilePath);
        if (!readOnly) CreateFile(FilePath);
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
            Exec(con, $"PRAGMA busy_timeout = {Math.Max(0, busyTimeoutMs)};");
        }
        catch
        {
            con.Dispose();
            throw;
        }
        return con;
    }

    // Foreign keys stay off while migrating: v2 rebuilds the tables that reference each other.
    internal override void AfterMigrate(DbConnection con) => Exec(con, "PRAGMA foreign_keys = ON;");

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
        if (!File.Exists(path))
        {
            if (System.IO.Path.GetDirectoryName(path) is { } dir) DatabaseFileAccess.CreateDirectory(dir);
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

/// <summary>The back end a configuration names.</summary>
public static class AccountingBackends
{
    /// <exception cref="InvalidDataException">A bad url (the config check refuses it first).</exception>
    public static AccountingBackend For(AlumetConfig cfg) =>
        cfg.Database.Url.Length == 0 ? new SqliteBackend(cfg.Paths.Database)
        : new PostgresBackend(DatabaseUrl.TryParse(cfg.Database.Url, cfg.Database.PasswordFile, out string? e)
            ?? throw new InvalidDataException($"[database] url {e}"));
}
