using Alumet.Hpc.Outputs.Accounting;
using Npgsql;
using Xunit;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// The accounting back ends the theories run against: SQLite always; PostgreSQL when a server is given
/// (tests/e2e/postgres/pg-lab.sh start, then `. $LAB/env.sh`: ALUMET_TEST_PG_URL, ALUMET_TEST_PG_PASSWORD_FILE).
/// With ALUMET_E2E_PG=1 (CI) a missing server fails the PostgreSQL cases instead of skipping them.
/// Each PostgreSQL case gets its own schema, so cases run in parallel like SQLite's temp files.
/// </summary>
public static class TestBackends
{
    public static TheoryData<string> Names => new() { "sqlite", "postgres" };

    public static string? PgUrl => Environment.GetEnvironmentVariable("ALUMET_TEST_PG_URL") is { Length: > 0 } u ? u : null;
    public static string PgPasswordFile => Environment.GetEnvironmentVariable("ALUMET_TEST_PG_PASSWORD_FILE") ?? "";

    public static void SkipWithoutPostgres()
    {
        if (PgUrl is not null) return;
        if (Environment.GetEnvironmentVariable("ALUMET_E2E_PG") == "1")
            throw new InvalidOperationException("ALUMET_E2E_PG=1 but ALUMET_TEST_PG_URL is not set: the PostgreSQL lab did not start");
        throw new SkipException("no PostgreSQL server (tests/e2e/postgres/pg-lab.sh start; . /var/lib/alumet-hpc-e2e/postgres/env.sh)");
    }

    /// <summary>A fresh, empty database of the given back end.</summary>
    public static AccountingBackend Create(string name, TempDir tmp)
    {
        if (name == "sqlite") return new SqliteBackend(tmp.Sub("acct.db"));
        SkipWithoutPostgres();
        string schema = "t" + Guid.NewGuid().ToString("N")[..16];
        var url = DatabaseUrl.TryParse($"{PgUrl}?schema={schema}", PgPasswordFile, out string? error) ?? throw new InvalidOperationException(error);
        using var con = new NpgsqlConnection(url.ConnectionString(10) is var cs ? new NpgsqlConnectionStringBuilder(cs) { SearchPath = null }.ConnectionString : "");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = $"CREATE SCHEMA {schema};";
        cmd.ExecuteNonQuery();
        return new PostgresBackend(url);
    }
}
