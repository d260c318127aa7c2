using System.Diagnostics;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Xunit;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>The accounting database's contract, on both back ends (one schema, one migration list, one set of statements).</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AccountingBackendTests
{
    private static JobRecord Sample(string jobId = "1234", string node = "n1", string status = JobStatus.Complete, double pkg = 180, string run = "20261125T080000000Z") =>
        AccountingDbTests.Sample(jobId, node, status, pkg) with { RunId = run };

    [SkippableTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void MigratesRoundTripsAndUpsertsIdempotently(string backend)
    {
        using var tmp = new TempDir();
        var be = TestBackends.Create(backend, tmp);
        using var db = AccountingDb.Open(be);
        Assert.Equal(AccountingDb.SchemaVersion, db.UserVersion());
        var rec = Sample();
        Assert.True(db.Upsert(rec));
        Assert.True(db.Upsert(rec));
        var back = Assert.Single(db.GetJob("1234"));
        Assert.Equal(rec with { Steps = [] }, back with { Steps = [] });
        Assert.Equal(rec.Steps, back.Steps);
        using var again = AccountingDb.Open(be); // an up-to-date schema is left alone
        using var ro = AccountingDb.OpenReadOnly(be);
        Assert.Equal(rec.Steps, Assert.Single(ro.GetJob("1234")).Steps);
    }

    [SkippableTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void StatusPrecedenceNeverDowngrades(string backend)
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(TestBackends.Create(backend, tmp));
        var id = new JobIdentity("slurm", "lab", "1234", "alice", 1001, "n1", "20261125T080000000Z");
        Assert.True(db.Upsert(JobRecord.NotMeasured(id, "no energy counter")));
        Assert.True(db.Upsert(Sample(status: JobStatus.Partial, pkg: 100)));
        Assert.True(db.Upsert(Sample(pkg: 180)));
        Assert.False(db.Upsert(JobRecord.NotMeasured(id, "spool missing")));
        Assert.False(db.Upsert(Sample(status: JobStatus.Partial, pkg: 1)));
        var row = Assert.Single(db.GetJob("1234"));
        Assert.Equal((JobStatus.Complete, 180.0, 2), (row.Status, row.Energy.PackageJ, row.Steps.Count));
    }

    [SkippableTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void RunsOfAReusedJobIdAndTheLatestOne(string backend)
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(TestBackends.Create(backend, tmp));
        var t1 = new DateTime(2026, 1, 1, 8, 0, 0, DateTimeKind.Utc);
        var t2 = new DateTime(2026, 6, 1, 8, 0, 0, DateTimeKind.Utc);
        foreach (string n in new[] { "n1", "n2", "n3" })
            db.Upsert(Sample(node: n, pkg: 1, run: RunId.FromStart(t1)) with { Start = t1, End = t1.AddHours(1) });
        db.Upsert(Sample(node: "n1", pkg: 10, run: RunId.FromStart(t2)) with { Start = t2, End = t2.AddHours(1) });
        db.Upsert(Sample(node: "n2", pkg: 20, run: RunId.FromStart(t2.AddMilliseconds(5))) with { Start = t2.AddMilliseconds(5), End = t2.AddHours(1) });
        Assert.Equal([("n1", 10.0), ("n2", 20.0)], db.GetJob("1234").Select(r => (r.Node, r.Energy.PackageJ)));
        Assert.Equal(5, db.GetJob("1234", runs: RunSelection.All).Count);
        Assert.Equal(3, db.Query(new JobQuery(["1234"], Runs: RunSelection.All, RunId: RunId.FromStart(t1))).Count);
        // -N keeps the runs that ran on the node (the t1 run, all its nodes), and the latest run only if it ran there.
        Assert.Equal([("n1", 1.0), ("n2", 1.0), ("n3", 1.0)],
            db.Query(new JobQuery(["1234"], Runs: RunSelection.All, Nodes: ["n3"])).Select(r => (r.Node, r.Energy.PackageJ)));
        Assert.Empty(db.Query(new JobQuery(["1234"], Nodes: ["n3"])));
        // A window keeps its own latest run (sacct), not the later run of the reused id.
        Assert.Equal(3, db.Query(new JobQuery(["1234"], Since: t1.AddDays(-1), Until: t1.AddDays(1))).Count);
    }

    /// <summary>
    /// A not_measured row with neither start nor end (the prolog never registered the job on its node) is of the run its
    /// run id names and of no other (sacct never merges two job records by time), and it is placed at its last update,
    /// as the -S/-E window places it. With no time it overlapped every run: it lost the latest run to any earlier run on
    /// its node, stayed beside a later run on another node, and -N on its node matched every run of the id.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ARowWithNoTimeIsOfItsRunIdsRunOnlyAndPlacedAtItsLastUpdate(string backend)
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(TestBackends.Create(backend, tmp));
        var now = DateTime.UtcNow;
        JobRecord Ran(string job, string node, DateTime start, string? run = null) =>
            Sample(job, node, run: run ?? RunId.FromStart(start)) with { Start = start, End = start.AddHours(1) };
        JobRecord NotRegistered(string job, string node, string run) =>
            JobRecord.NotMeasured(new JobIdentity("slurm", "lab", job, "alice", 1001, node, run), "the prolog did not register this job");
        (string, string)[] Rows(JobQuery q) => [.. db.Query(q).Select(r => (r.Node, r.Status))];

        // 800 ran on n1 a month ago; the id came back and was not measured on n1 (recorded now): that is its latest run.
        db.Upsert(Ran("800", "n1", now.AddDays(-30)));
        db.Upsert(NotRegistered("800", "n1", RunId.FromStart(now)));
        Assert.Equal([("n1", JobStatus.NotMeasured)], Rows(new JobQuery(["800"])));
        // 801 was not measured on n2 (recorded now); the id runs again tomorrow on n1: tomorrow's run alone is the latest.
        db.Upsert(NotRegistered("801", "n2", RunId.FromStart(now)));
        db.Upsert(Ran("801", "n1", now.AddDays(1)));
        Assert.Equal([("n1", JobStatus.Complete)], Rows(new JobQuery(["801"])));
        // 802 ran on n1 a month ago, then was not measured on n2: -N n2 is the n2 row's run, never the n1 run.
        db.Upsert(Ran("802", "n1", now.AddDays(-30)));
        db.Upsert(NotRegistered("802", "n2", RunId.FromStart(now)));
        Assert.Equal([("n2", JobStatus.NotMeasured)], Rows(new JobQuery(["802"], Runs: RunSelection.All, Nodes: ["n2"])));
        Assert.Equal([("n2", JobStatus.NotMeasured)], Rows(new JobQuery(["802"], Nodes: ["n2"])));
        // 803: one run named by its SLUID on n1 and n2, n2 not measured: the run id ties them, -N n2 keeps both nodes.
        db.Upsert(Ran("803", "n1", now.AddHours(-2), run: "s0E4QZK1T3WXA"));
        db.Upsert(NotRegistered("803", "n2", "s0E4QZK1T3WXA"));
        Assert.Equal([("n2", JobStatus.NotMeasured), ("n1", JobStatus.Complete)], Rows(new JobQuery(["803"], Runs: RunSelection.All, Nodes: ["n2"])));
        Assert.Equal([("n2", JobStatus.NotMeasured), ("n1", JobStatus.Complete)], Rows(new JobQuery(["803"])));
    }

    [SkippableTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void ManyNodesWritingAtOnceAllLand(string backend)
    {
        using var tmp = new TempDir();
        var be = TestBackends.Create(backend, tmp);
        const int writers = 8, jobsEach = 20;
        // Every writer opens its own connection and races on the first migration too; each row is written twice.
        Parallel.For(0, writers, new ParallelOptions { MaxDegreeOfParallelism = writers }, w =>
        {
            using var db = AccountingDb.Open(be);
            for (int j = 0; j < jobsEach; j++)
            {
                db.Upsert(Sample($"{j}", $"n{w}"));
                db.Upsert(Sample($"{j}", $"n{w}"));
            }
        });
        using var ro = AccountingDb.OpenReadOnly(be);
        var rows = ro.Query(new JobQuery(Runs: RunSelection.All));
        Assert.Equal(writers * jobsEach, rows.Count);
        Assert.Equal(writers * jobsEach * 2, rows.Sum(r => r.Steps.Count));
    }

    [SkippableTheory]
    [MemberData(nameof(TestBackends.Names), MemberType = typeof(TestBackends))]
    public void TheOutboxDrainsIntoEitherBackEnd(string backend)
    {
        using var tmp = new TempDir();
        var be = TestBackends.Create(backend, tmp);
        var outbox = new Outbox(tmp.Sub("outbox"));
        outbox.Put(Sample("1", pkg: 5));
        outbox.Put(Sample("2", pkg: 6));
        var r = outbox.Drain(be, TimeSpan.FromSeconds(10));
        Assert.Equal((2, 0, (string?)null), (r.Stored, r.Left, r.Problem));
        using var db = AccountingDb.OpenReadOnly(be);
        Assert.Equal([5.0, 6.0], db.Query(new JobQuery()).Select(x => x.Energy.PackageJ));
    }
}

/// <summary>PostgreSQL-only rules: where the server is, credentials, what a failure reads like.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PostgresBackendTests
{
    [Theory]
    [InlineData("postgresql://db1/acct", "", "db1", 5432, "acct", "")]
    [InlineData("postgres://alumet@db1.example.org:6543/acct?sslmode=require", "/etc/alumet-hpc/db.password", "db1.example.org", 6543, "acct", "alumet")]
    [InlineData("postgresql://alumet@/acct?host=/run/postgresql&port=5433", "", "/run/postgresql", 5433, "acct", "alumet")]
    public void ParsesLibpqUris(string url, string pwfile, string host, int port, string database, string user)
    {
        var u = DatabaseUrl.TryParse(url, pwfile, out string? error);
        Assert.Null(error);
        Assert.Equal((host, port, database, user, pwfile), (u!.Host, u.Port, u.Database, u.User, u.PasswordFile));
    }

    [Theory]
    [InlineData("postgresql://alumet:secret@db1/acct", "holds a password: the config is readable by every user; put the password in [database] password_file (mode 0600) instead")]
    [InlineData("postgresql://db1/acct?password=secret", "holds a password: the config is readable by every user; put the password in [database] password_file (mode 0600) instead")]
    [InlineData("postgresql://db1/", "names no database: use postgresql://HOST[:PORT]/DATABASE")]
    [InlineData("postgresql:///acct", "names no host: use postgresql://HOST[:PORT]/DB, or ?host=/socket/directory for a unix socket")]
    [InlineData("postgresql://db1:99999/acct", "has a bad port '99999' (1..65535)")]
    [InlineData("postgresql://db1/acct?foo=1", "has an unknown parameter 'foo' (known: host, port, sslmode, application_name, schema)")]
    public void RefusesBadUrlsWithASentence(string url, string expected)
    {
        Assert.Null(DatabaseUrl.TryParse(url, "", out string? error));
        Assert.Equal(expected, error);
    }

    [Fact]
    public void TheConfigRefusesAPasswordInTheUrl()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("a.toml"), "[database]\nurl = \"postgresql://alumet:pw@db1/acct\"\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(tmp.Sub("a.toml")));
        Assert.Contains("database.url: \"postgresql://alumet:pw@db1/acct\" holds a password", e.Message);
    }

    [Fact]
    public void AWorldReadablePasswordFileIsRefusedBeforeAnythingIsSent()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.Sub("pw"), "secret\n");
        File.SetUnixFileMode(tmp.Sub("pw"), (UnixFileMode)0b110_100_100);
        var be = new PostgresBackend(DatabaseUrl.TryParse("postgresql://alumet@127.0.0.1:1/acct", tmp.Sub("pw"), out _)!);
        var r = new Outbox(tmp.Sub("outbox")) is var o && o.Put(AccountingDbTests.Sample()) is not null ? o.Drain(be, TimeSpan.FromSeconds(2)) : null;
        Assert.Equal($"{be.Where}: the database password file {tmp.Sub("pw")} is readable by other users (mode 644): chmod 600 it (refused, nothing sent)", r!.Problem);
        File.SetUnixFileMode(tmp.Sub("pw"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal("secret", DatabaseUrl.ReadPassword(tmp.Sub("pw")));
    }

    [Theory]
    [InlineData("postgresql://alumet@127.0.0.1:1/acct")]               // TCP, nothing listening
    [InlineData("postgresql://alumet@/acct?host=/nonexistent-socket-dir")] // unix socket file missing
    public void NoServerReadsServerNotRunningInOurWords(string url)
    {
        using var tmp = new TempDir();
        var be = new PostgresBackend(DatabaseUrl.TryParse(url, "", out _)!);
        var outbox = new Outbox(tmp.Sub("outbox"));
        outbox.Put(AccountingDbTests.Sample());
        var sw = Stopwatch.StartNew();
        var r = outbox.Drain(be, TimeSpan.FromSeconds(2));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5));
        Assert.Equal(1, r.Left);
        Assert.StartsWith($"PostgreSQL server not running at {be.Where} (", r.Problem);
        Assert.EndsWith("): start it, or rows wait in the outbox until it is back", r.Problem);
    }
}
