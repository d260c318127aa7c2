using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Outputs;
using Npgsql;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

/// <summary>
/// README's installation on a PostgreSQL server (tests/e2e/postgres/pg-lab.sh): the writer role <c>alumet</c> (password
/// file 0600 root) writes one job per user into a schema of its own; the system config names the read-only role
/// <c>alumet_report</c> (password file 0640 root:alumet, the grants of README's "the report's read-only role") for the
/// setgid gate built for this installation. Skipped without a server, failed with ALUMET_E2E_PG=1 and none.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TwoUsersPostgresInstallation : IDisposable
{
    public string? SkipReason { get; }
    public TempDir Dir { get; } = new();
    public string Bin { get; } = "";
    public string Gate => Dir.Sub("bin/alumet-report");
    public string SystemConfig => Dir.Sub("etc/alumet.toml");
    public string Schema { get; } = "";
    public PostgresBackend? Writer { get; }
    public static string ReportUrl => Environment.GetEnvironmentVariable("ALUMET_TEST_PG_REPORT_URL") ?? "";
    public static string ReportPasswordFile => Environment.GetEnvironmentVariable("ALUMET_TEST_PG_REPORT_PASSWORD_FILE") ?? "";

    public TwoUsersPostgresInstallation()
    {
        // The SQLite installation's checks and users (root, runuser, useradd, gcc, the binary).
        using (var sqlite = new TwoUsersInstallation())
        {
            if (sqlite.SkipReason is not null) { SkipReason = sqlite.SkipReason; return; }
            Bin = sqlite.Bin;
        }
        if (TestBackends.PgUrl is null || ReportUrl.Length == 0) { SkipReason = "no PostgreSQL lab (tests/e2e/postgres/pg-lab.sh start; . $PG_LAB/env.sh)"; return; }
        File.SetUnixFileMode(Dir.Path, (UnixFileMode)0b111_101_101);
        Directory.CreateDirectory(Dir.Sub("etc"));
        Directory.CreateDirectory(Dir.Sub("bin"));
        Writer = (PostgresBackend)TestBackends.Create("postgres", Dir);
        Schema = Writer.Url.Schema;
        WriteSystemConfig(ReportPasswordFile);
        var now = DateTime.UtcNow;
        int uidA = int.Parse(TwoUsersInstallation.Sh($"id -u {TwoUsersInstallation.UserA}").Out.Trim());
        int uidB = int.Parse(TwoUsersInstallation.Sh($"id -u {TwoUsersInstallation.UserB}").Out.Trim());
        using (var w = AccountingDb.Open(Writer))
        {
            w.Upsert(ReportFixture.Rec("4001", "n1", TwoUsersInstallation.UserA, uidA, now.AddMinutes(-2), 60, new DomainEnergies(6000, 0, 0, 600, 0, 0), 120));
            w.Upsert(ReportFixture.Rec("4001", "n2", TwoUsersInstallation.UserA, uidA, now.AddMinutes(-2), 60, new DomainEnergies(3000, 0, 0, 300, 0, 0), 60));
            w.Upsert(ReportFixture.Rec("4002", "n1", TwoUsersInstallation.UserB, uidB, now.AddMinutes(-2), 60, new DomainEnergies(9000, 0, 0, 0, 0, 0), 150));
        }
        string src = Path.Combine(TwoUsersInstallation.RepoRoot(), "src", "report-gate", "alumet-report-gate.c");
        var built = TwoUsersInstallation.Sh($"gcc -O2 -Wall -Wextra -Werror -DALUMET_HPC_BIN='\"{Bin}\"' -DALUMET_SYSTEM_CONFIG='\"{SystemConfig}\"' -o {Gate} {src}"
            + $" && chown root:alumet {Gate} && chmod 2755 {Gate}");
        if (built.Code != 0) throw new InvalidOperationException($"building the gate failed: {built.Err}");
    }

    /// <summary>The system config: the writer's url and password file, and the report's read-only role.</summary>
    public void WriteSystemConfig(string reportPasswordFile, bool withReportRole = true) => File.WriteAllText(SystemConfig, $"""
        [database]
        url = "{TestBackends.PgUrl}?schema={Schema}"
        password_file = "{TestBackends.PgPasswordFile}"
        report_url = "{(withReportRole ? $"{ReportUrl}?schema={Schema}" : "")}"
        report_password_file = "{(withReportRole ? reportPasswordFile : "")}"

        [report]
        admins = ["root"]
        """);

    public void Dispose() => Dir.Dispose();
}

/// <summary>
/// issue 9, access control on PostgreSQL: a user sees only their own jobs through the real report, which reads with a
/// read-only role whose password only the report can read; that role cannot write.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReportPostgresAccessTests : IClassFixture<TwoUsersPostgresInstallation>
{
    private const string A = TwoUsersInstallation.UserA, B = TwoUsersInstallation.UserB;
    private readonly TwoUsersPostgresInstallation _i;
    public ReportPostgresAccessTests(TwoUsersPostgresInstallation i) => _i = i;

    private void Require()
    {
        if (_i.SkipReason is not null && _i.SkipReason.StartsWith("no PostgreSQL", StringComparison.Ordinal)) TestBackends.SkipWithoutPostgres();
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
    }

    public static TheoryData<string, string, string, string> Users => new()
    {
        { A, "4001", B, "4002" },
        { B, "4002", A, "4001" },
    };

    [SkippableTheory, MemberData(nameof(Users))]
    public void GateShowsOwnJobsOnlyFromPostgres(string me, string mine, string other, string theirs)
    {
        Require();
        var own = TwoUsersInstallation.RunAs(me, _i.Gate, "-j", mine, "-P", "-n", "--noconvert", "-o", "JobID,User,NodeList,NNodes,PackageEnergy");
        string expected = mine == "4001" ? $"4001|{A}|n[1-2]|2|9000\n4001|{A}|n1|1|6000\n4001|{A}|n2|1|3000\n" : $"4002|{B}|n1|1|9000\n";
        Assert.Equal((0, expected, ""), own);
        var all = TwoUsersInstallation.RunAs(me, _i.Gate, "-P", "-n", "-X", "-o", "JobID,User");
        Assert.Equal((0, $"{mine}|{me}\n", ""), all);
        var json = TwoUsersInstallation.RunAs(me, _i.Gate, "--json");
        Assert.Equal(0, json.Code);
        Assert.Matches($"\"job_id\":\\s*{mine}\\b", json.Out);
        Assert.DoesNotContain(theirs, json.Out);
        Assert.DoesNotContain(other, json.Out);
        foreach (var args in new[] { new[] { "-j", theirs }, ["-u", other], ["-a"], ["-j", theirs, "--json"] })
        {
            var r = TwoUsersInstallation.RunAs(me, _i.Gate, [.. args, "-P", "-n"]);
            Assert.Equal(0, r.Code);
            Assert.DoesNotContain(theirs + "|", r.Out);
            Assert.DoesNotContain(other, r.Out + r.Err);
        }
    }

    [SkippableFact]
    public void RootSeesEveryJobThroughTheWriterRole()
    {
        Require();
        var r = TwoUsersInstallation.Sh($"{_i.Bin} report --config {_i.SystemConfig} -j 4001,4002 -X -P -n -o JobID,User");
        Assert.Equal((0, $"4001|{A}\n4002|{B}\n", ""), r);
    }

    [SkippableFact]
    public void PasswordFilesAreClosedToUsers()
    {
        Require();
        Assert.Equal("root:root 600\n", TwoUsersInstallation.Sh($"stat -c '%U:%G %a' {TestBackends.PgPasswordFile}").Out);
        Assert.Equal("root:alumet 640\n", TwoUsersInstallation.Sh($"stat -c '%U:%G %a' {TwoUsersPostgresInstallation.ReportPasswordFile}").Out);
        foreach (var f in new[] { TestBackends.PgPasswordFile, TwoUsersPostgresInstallation.ReportPasswordFile })
            Assert.NotEqual(0, TwoUsersInstallation.RunAs(A, "/bin/cat", f).Code);
        // A config of the user's own naming the report's password file: the group is given up first, so it is unreadable.
        string cfg = _i.Dir.Sub("own.toml");
        File.WriteAllText(cfg, File.ReadAllText(_i.SystemConfig).Replace("admins = [\"root\"]", $"admins = [\"{A}\"]"));
        var r = TwoUsersInstallation.RunAs(A, _i.Gate, "--config", cfg, "-j", "4002", "-P", "-n");
        Assert.Equal(1, r.Code);
        Assert.Equal("", r.Out);
        Assert.Equal($"alumet-report: error: cannot read the report's database password file {TwoUsersPostgresInstallation.ReportPasswordFile}: "
            + "it is missing or not readable by the group alumet; make it root-owned, group alumet, mode 0640 (README, \"Who sees what\")\n", r.Err);
    }

    [SkippableTheory]
    [InlineData("root:alumet", "644", "mode 644")]
    [InlineData("nobody:alumet", "640", "owner uid 65534")]
    public void UnsafeReportPasswordFileIsRefused(string owner, string mode, string said)
    {
        Require();
        string copy = _i.Dir.Sub($"report-{mode}-{owner.Replace(':', '-')}.password");
        Assert.Equal(0, TwoUsersInstallation.Sh($"cp {TwoUsersPostgresInstallation.ReportPasswordFile} {copy} && chown {owner} {copy} && chmod {mode} {copy}").Code);
        try
        {
            _i.WriteSystemConfig(copy);
            var r = TwoUsersInstallation.RunAs(A, _i.Gate, "-j", "4001", "-P", "-n");
            Assert.Equal(1, r.Code);
            Assert.Equal("", r.Out);
            Assert.StartsWith($"alumet-report: error: the report's database password file {copy} could be read or changed by others (", r.Err);
            Assert.Contains(said, r.Err);
            Assert.EndsWith("refused, nothing sent; make it root-owned, group alumet, mode 0640 (README, \"Who sees what\")\n", r.Err);
        }
        finally
        {
            _i.WriteSystemConfig(TwoUsersPostgresInstallation.ReportPasswordFile);
        }
    }

    [SkippableFact]
    public void ReportPasswordFileOfAnotherGroupIsRefusedEvenToRoot()
    {
        Require();
        string copy = _i.Dir.Sub("report-root-group.password");
        Assert.Equal(0, TwoUsersInstallation.Sh($"cp {TwoUsersPostgresInstallation.ReportPasswordFile} {copy} && chown root:root {copy} && chmod 640 {copy}").Code);
        var e = Assert.Throws<InvalidDataException>(() => DatabaseUrl.ReadReportPassword(copy));
        Assert.Equal($"the report's database password file {copy} could be read or changed by others (owner uid 0, gid 0, mode 640): refused, nothing sent; "
            + "make it root-owned, group alumet, mode 0640 (README, \"Who sees what\")", e.Message);
        Assert.Equal(0, TwoUsersInstallation.Sh($"chgrp alumet {copy}").Code);
        Assert.Equal(File.ReadAllLines(TwoUsersPostgresInstallation.ReportPasswordFile)[0], DatabaseUrl.ReadReportPassword(copy));
    }

    [SkippableFact]
    public void WithoutAReportRoleUsersAreToldWhatToAsk()
    {
        Require();
        try
        {
            _i.WriteSystemConfig("", withReportRole: false);
            var r = TwoUsersInstallation.RunAs(A, _i.Gate, "-j", "4001", "-P", "-n");
            Assert.Equal((1, "", "alumet-report: error: the accounting database is a PostgreSQL server and the system config sets no read-only role "
                + "for reports: ask an administrator to set [database] report_url and report_password_file (README, \"Who sees what\")\n"), r);
        }
        finally
        {
            _i.WriteSystemConfig(TwoUsersPostgresInstallation.ReportPasswordFile);
        }
    }

    [SkippableFact]
    public void ReadOnlyRoleReadsButCannotWrite()
    {
        Require();
        // As the report role with nothing else in the way (no read-only transaction): only the grants stop it.
        string password = DatabaseUrl.ReadReportPassword(TwoUsersPostgresInstallation.ReportPasswordFile);
        var url = DatabaseUrl.TryParse($"{TwoUsersPostgresInstallation.ReportUrl}?schema={_i.Schema}", "", out string? error)!;
        Assert.Null(error);
        using var con = new NpgsqlConnection(url.ConnectionString(10, password));
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM jobs;";
        Assert.Equal(3L, cmd.ExecuteScalar());
        foreach (var sql in new[]
        {
            "INSERT INTO jobs (cluster, scheduler, job_id, node, run_id) VALUES ('lab', 'slurm', '4003', 'n1', 'r');",
            "UPDATE jobs SET energy_package_j = 0;",
            "DELETE FROM jobs;",
            "DELETE FROM steps;",
            "UPDATE alumet_schema SET version = 0;",
            "CREATE TABLE jobs2 (x int);",
            "DROP TABLE jobs;",
            "TRUNCATE jobs;",
        })
        {
            cmd.CommandText = sql;
            var e = Assert.Throws<PostgresException>(() => cmd.ExecuteNonQuery());
            Assert.True(e.SqlState == "42501", $"{sql}: {e.SqlState} {e.MessageText} (expected 42501, insufficient privilege)");
        }
        cmd.CommandText = "SELECT count(*), sum(energy_package_j) FROM jobs;";
        using var rd = cmd.ExecuteReader();
        Assert.True(rd.Read());
        Assert.Equal((3L, 18000.0), (rd.GetInt64(0), rd.GetDouble(1)));
    }
}
