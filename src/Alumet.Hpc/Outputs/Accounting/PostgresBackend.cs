using System.Collections.Concurrent;
using System.Data.Common;
using System.Net.Sockets;
using Npgsql;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>
/// PostgreSQL, for clusters: every node's hooks write to one server (SQLite's file locking over a shared filesystem
/// is not reliable). Through Npgsql's slim data source builder, which is NativeAOT-clean (no reflection). Same schema
/// and migrations as SQLite (<see cref="Schema"/>); the version lives in a one-row table <c>alumet_schema</c>, and
/// concurrent migrators serialize on a transaction-scoped advisory lock. Credentials never come from the
/// world-readable config: the password is read from <see cref="DatabaseUrl.PasswordFile"/>, a file only its owner reads.
/// </summary>
/// <param name="password">The password, already read (the report reads its role's password while it holds the group
/// alumet, then gives the group up before it connects); null: read from <see cref="DatabaseUrl.PasswordFile"/> at connect.</param>
public sealed class PostgresBackend(DatabaseUrl url, string? password = null) : AccountingBackend
{
    // Arbitrary, fixed: the advisory lock key of alumet-hpc's migrations.
    private const long MigrationLockKey = 0x616c756d6574;

    private static readonly ConcurrentDictionary<string, NpgsqlDataSource> DataSources = new();

    public DatabaseUrl Url { get; } = url;

    public override string Where => Url.Display;

    internal override DbConnection Connect(int busyTimeoutMs, bool readOnly)
    {
        var csb = Url.ConnectionString(Math.Max(1, (busyTimeoutMs + 999) / 1000), password);
        // One data source per connection string and process; short-lived processes: no pooling, the connection
        // closes with the AccountingDb.
        var ds = DataSources.GetOrAdd(csb, cs => new NpgsqlSlimDataSourceBuilder(cs).Build());
        var con = ds.CreateConnection();
        try
        {
            con.Open();
            if (readOnly)
            {
                using var cmd = con.CreateCommand();
                cmd.CommandText = "SET default_transaction_read_only = on;";
                cmd.ExecuteNonQuery();
            }
        }
        catch
        {
            con.Dispose();
            throw;
        }
        return con;
    }

    internal override int ReadVersion(DbConnection con, DbTransaction? tx)
    {
        using var cmd = con.CreateCommand();
        cmd.Transaction = tx;
        // pg_tables, not to_regclass(): a name lookup may answer from this session's catalog cache, which is not
        // refreshed by an advisory lock, and miss the table a concurrent migrator has just committed.
        cmd.CommandText = "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'alumet_schema');";
        if (cmd.ExecuteScalar() is not true) return 0;
        cmd.CommandText = "SELECT coalesce(max(version), 0) FROM alumet_schema;";
        return Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    internal override void WriteVersion(DbConnection con, DbTransaction tx, int version)
    {
        using var cmd = con.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"CREATE TABLE IF NOT EXISTS alumet_schema (version INTEGER NOT NULL); DELETE FROM alumet_schema; INSERT INTO alumet_schema VALUES ({version});";
        cmd.ExecuteNonQuery();
    }

    internal override void LockSchema(DbConnection con, DbTransaction tx)
    {
        using var cmd = con.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"SELECT pg_advisory_xact_lock({MigrationLockKey});";
        cmd.ExecuteNonQuery();
    }

    internal override string? MigrationSql(Migration m) => m.Postgres ?? m.Sql;

    // serialization_failure, deadlock_detected, lock_not_available, unique_violation (two first inserts racing)
    internal override bool IsContention(DbException e) => e is PostgresException { SqlState: "40001" or "40P01" or "55P03" or "23505" };

    /// <summary>Why a read failed, for a report's user (who cannot start the server; no outbox is involved).</summary>
    public string DescribeRead(Exception e) => e switch
    {
        NpgsqlException { InnerException: SocketException s } => $"PostgreSQL server not running at {Where} ({s.SocketErrorCode}): try again later, or ask an administrator",
        NpgsqlException { InnerException: TimeoutException } or TimeoutException => $"PostgreSQL server at {Where} did not answer in time: try again later, or ask an administrator",
        _ => Describe(e),
    };

    public override string Describe(Exception e) => e switch
    {
        PostgresException { SqlState: "28P01" or "28000" } p => $"PostgreSQL at {Where} refused the login ({p.MessageText}): check the user in url and the password in {Url.PasswordFile}",
        PostgresException { SqlState: "3D000" } => $"PostgreSQL at {Where}: the database does not exist: create it (createdb) or fix url",
        PostgresException p => $"PostgreSQL at {Where}: {p.MessageText} ({p.SqlState})",
        NpgsqlException { InnerException: SocketException s } => $"PostgreSQL server not running at {Where} ({s.SocketErrorCode}): start it, or rows wait in the outbox until it is back",
        NpgsqlException { InnerException: TimeoutException } or TimeoutException => $"PostgreSQL server at {Where} did not answer in time: rows wait in the outbox until it does",
        NpgsqlException n when n.InnerException is IOException or EndOfStreamException => $"PostgreSQL server at {Where} closed the connection ({n.InnerException.Message}): rows wait in the outbox",
        _ => base.Describe(e),
    };
}
