using System.Diagnostics;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Microsoft.Data.Sqlite;
using Xunit;

namespace Alumet.Hpc.Tests.Outputs;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AccountingDbTests
{
    internal static JobRecord Sample(string jobId = "1234", string node = "n1", string status = JobStatus.Complete, double pkg = 180, string user = "alice", int uid = 1001) => new(
        "lab", "slurm", jobId, node, user, uid,
        new DateTime(2026, 11, 25, 8, 0, 0, DateTimeKind.Utc), new DateTime(2026, 11, 25, 9, 1, 1, 500, DateTimeKind.Utc), 3661.5,
        new DomainEnergies(pkg, 100, 0, 36, 0, 600), 222.5, 352.25,
        1000, "nvml=20,rapl=1000", "nvml-energy-counter,powercap", false, "", "RAPL package+dram, NVML GPU",
        "cgroup-cpu-time", 1000, 3661, 1, 2, 2000, 300, 700, status, status == JobStatus.Complete ? "" : "sampler started late", $"/data/{jobId}.{node}.parquet", "0.1.0",
        [new StepRecord($"{jobId}.batch", new DateTime(2026, 11, 25, 8, 0, 0, DateTimeKind.Utc), new DateTime(2026, 11, 25, 8, 30, 0, DateTimeKind.Utc), 1800, new DomainEnergies(60, 0, 0, 0, 0, 0), 0.0333, 10, 1800, 0),
         new StepRecord($"{jobId}.0", null, null, 0, DomainEnergies.Zero, 0, 0, 0, 0)]);

    /// <summary>
    /// The report's time window (sacct -S/-E and the default "since 00:00 today") reads through an index for every kind
    /// of listing, in the bundled SQLite: never a MULTI-INDEX OR (which holds every matching rowid in memory before the
    /// first row: 48 MB for 1 M rows), never a scan of the whole table for a day's jobs.
    /// </summary>
    [Theory]
    [InlineData(false, RunSelection.Latest, "jobs_by_window_end")]
    [InlineData(false, RunSelection.All, "jobs_by_window_end")]
    [InlineData(true, RunSelection.Latest, "jobs_by_uid_window_end")]
    [InlineData(true, RunSelection.All, "jobs_by_uid_window_end")]
    public void TheTimeWindowReadsThroughItsIndex(bool oneUser, RunSelection runs, string index)
    {
        using var tmp = new TempDir();
        string path = Path.Combine(tmp.Path, "acct.db");
        using (var w = AccountingDb.Open(path)) w.Upsert(Sample());
        using var db = AccountingDb.OpenReadOnly(path);
        using var cmd = db.StreamCommand(new JobQuery(Uid: oneUser ? 1001 : null, Runs: runs,
            Since: new DateTime(2026, 11, 25, 0, 0, 0, DateTimeKind.Utc), Until: new DateTime(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc)));
        cmd.CommandText = "EXPLAIN QUERY PLAN " + cmd.CommandText;
        var plan = new List<string>();
        using (var rd = cmd.ExecuteReader())
            while (rd.Read()) plan.Add(rd.GetString(3));
        string first = plan[0];
        Assert.True(first.StartsWith("SEARCH jobs USING INDEX " + index + " ", StringComparison.Ordinal), string.Join(" | ", plan));
        Assert.DoesNotContain(plan, p => p.Contains("MULTI-INDEX OR", StringComparison.Ordinal) || p.StartsWith("SCAN jobs", StringComparison.Ordinal));
    }

    [Fact]
    public void CreatesDirectoryAndFileWithModesAndMigrates()
    {
        using var tmp = new TempDir();
        string path = Path.Combine(tmp.Path, "a", "b", "acct.db");
        using (var db = AccountingDb.Open(path))
            Assert.Equal(AccountingDb.SchemaVersion, db.UserVersion());
        // The writer's close keeps the WAL's files for non-root readers, with the database's mode.
        Assert.All(new[] { path + "-wal", path + "-shm" }, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(f)));
        // 0640: users read only through alumet-report's setgid gate (README, Install); 0751: no listing, traversal kept.
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherExecute, File.GetUnixFileMode(Path.Combine(tmp.Path, "a", "b")));
        using var con = new SqliteConnection($"Data Source={path};Pooling=false");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode; ";
        Assert.Equal("wal", cmd.ExecuteScalar()); // no reader blocks a writer (SqliteBackend)
        cmd.CommandText = "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)";
        Assert.Equal("jobs,steps", cmd.ExecuteScalar());
    }

    /// <summary>
    /// A database of an older version (rollback journal) is switched to WAL by the next writer's open, which makes the
    /// WAL's files and keeps them. A reader in the middle of a read then (a report of the older version) does not make
    /// that writer wait: the switch is left to a later writer.
    /// </summary>
    [Fact]
    public void AnOlderRollbackDatabaseIsSwitchedToWalByTheNextWriterThatFindsItFree()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        using (var db = AccountingDb.Open(path)) db.Upsert(Sample());
        using (var old = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            old.Open();
            using var cmd = old.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode = DELETE;";
            Assert.Equal("delete", cmd.ExecuteScalar());
        }
        Assert.Equal((false, false, false), (IsWal(path), File.Exists(path + "-wal"), File.Exists(path + "-shm")));

        using (var reader = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=false"))
        {
            reader.Open();
            using var cmd = reader.CreateCommand();
            cmd.CommandText = "SELECT job_id FROM jobs;";
            using var rd = cmd.ExecuteReader();
            Assert.True(rd.Read()); // holds the file's shared lock
            var watch = Stopwatch.StartNew();
            using (var db = AccountingDb.Open(path, busyTimeoutMs: 2000)) Assert.Single(db.GetJob("1234"));
            Assert.True(watch.ElapsedMilliseconds < 1000, $"the writer's open waited {watch.ElapsedMilliseconds} ms for the switch");
            Assert.False(IsWal(path));
        }

        using (var db = AccountingDb.Open(path)) Assert.Single(db.GetJob("1234"));
        Assert.Equal((true, true, true), (IsWal(path), File.Exists(path + "-wal"), File.Exists(path + "-shm")));
        using (var db = AccountingDb.OpenReadOnly(path)) Assert.Single(db.GetJob("1234"));
    }

    /// <summary>
    /// While a reader holds an old snapshot the -wal grows by what is written meanwhile (no checkpoint may pass the
    /// reader); a writer's close that finds no reader checkpoints it and cuts it back to 0 bytes, the file kept.
    /// </summary>
    [Fact]
    public void TheWalGrowsWhileAReaderHoldsASnapshotAndIsCutBackAfter()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        using (var db = AccountingDb.Open(path)) db.Upsert(Sample());
        Assert.Equal(0, new FileInfo(path + "-wal").Length);
        using (var reader = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=false"))
        {
            reader.Open();
            using var cmd = reader.CreateCommand();
            cmd.CommandText = "SELECT job_id FROM jobs;";
            using var rd = cmd.ExecuteReader();
            Assert.True(rd.Read());
            using (var db = AccountingDb.Open(path))
                for (int i = 0; i < 50; i++) db.Upsert(Sample(jobId: $"{2000 + i}"));
            Assert.InRange(new FileInfo(path + "-wal").Length, 50 * 4096, long.MaxValue);
        }
        using (var db = AccountingDb.Open(path)) Assert.Equal(51, db.Query(new JobQuery()).Count);
        Assert.Equal((true, 0L), (File.Exists(path + "-wal"), new FileInfo(path + "-wal").Length));
    }

    /// <summary>The file's header says WAL (bytes 18-19), read without a connection (whose close could delete the WAL's files).</summary>
    private static bool IsWal(string path)
    {
        var header = File.ReadAllBytes(path).AsSpan(0, 20);
        return header[18] == 2 && header[19] == 2;
    }

    [Fact]
    public void MigratesAnEmptyExistingFile()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        File.WriteAllBytes(path, []);
        using var db = AccountingDb.Open(path);
        Assert.Equal(AccountingDb.SchemaVersion, db.UserVersion());
        Assert.True(db.Upsert(Sample()));
        Assert.Single(db.GetJob("1234"));
    }

    [Fact]
    public void RefusesANewerSchema()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        using (var db = AccountingDb.Open(path)) { }
        using (var con = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            cmd.CommandText = "PRAGMA user_version = 99;";
            cmd.ExecuteNonQuery();
        }
        Assert.Throws<InvalidDataException>(() => AccountingDb.Open(path));
        Assert.Throws<InvalidDataException>(() => AccountingDb.OpenReadOnly(path));
    }

    [Fact]
    public void ReadOnlyNeverCreates()
    {
        using var tmp = new TempDir();
        Assert.Throws<FileNotFoundException>(() => AccountingDb.OpenReadOnly(tmp.Sub("missing.db")));
        Assert.False(File.Exists(tmp.Sub("missing.db")));
    }

    [Fact]
    public void RoundTripsEveryField()
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        var rec = Sample();
        db.Upsert(rec);
        var back = Assert.Single(db.GetJob("1234"));
        Assert.Equal(rec with { Steps = [] }, back with { Steps = [] });
        Assert.Equal(rec.Steps, back.Steps);
        Assert.Equal(816.0, back.TotalEnergyJ);
        using var ro = AccountingDb.OpenReadOnly(tmp.Sub("acct.db"));
        Assert.Equal(rec.Steps, Assert.Single(ro.GetJob("1234")).Steps);
    }

    [Fact]
    public void UpsertTwiceIsIdempotent()
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        Assert.True(db.Upsert(Sample()));
        Assert.True(db.Upsert(Sample()));
        var rows = db.GetJob("1234");
        Assert.Single(rows);
        Assert.Equal(2, rows[0].Steps.Count);
        Assert.Equal(1, Count(tmp.Sub("acct.db"), "jobs"));
        Assert.Equal(2, Count(tmp.Sub("acct.db"), "steps"));
    }

    [Fact]
    public void StatusPrecedenceNeverDowngrades()
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        var id = new JobIdentity("slurm", "lab", "1234", "alice", 1001, "n1");

        Assert.True(db.Upsert(JobRecord.NotMeasured(id, "no energy counter")));
        Assert.Equal(JobStatus.NotMeasured, db.GetJob("1234")[0].Status);
        Assert.True(db.Upsert(Sample(status: JobStatus.Partial, pkg: 100)));
        Assert.Equal(JobStatus.Partial, db.GetJob("1234")[0].Status);
        Assert.True(db.Upsert(Sample(status: JobStatus.Complete, pkg: 180)));
        // A stale not_measured or partial (retried epilog, late duplicate) does not erase the measurement.
        Assert.False(db.Upsert(JobRecord.NotMeasured(id, "spool missing")));
        Assert.False(db.Upsert(Sample(status: JobStatus.Partial, pkg: 1)));
        var row = Assert.Single(db.GetJob("1234"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(180, row.Energy.PackageJ);
        Assert.Equal(2, row.Steps.Count);
        // An equal status replaces (re-finalization with more data).
        Assert.True(db.Upsert(Sample(status: JobStatus.Complete, pkg: 200) with { Steps = [] }));
        row = Assert.Single(db.GetJob("1234"));
        Assert.Equal(200, row.Energy.PackageJ);
        Assert.Empty(row.Steps);
    }

    [Fact]
    public void NotMeasuredRowKeepsIdentityAndReason()
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        var id = new JobIdentity("oar", "grid", "77", "bob", 1002, "n9");
        db.Upsert(JobRecord.NotMeasured(id, "no RAPL and estimate=off", new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc), new DateTime(2026, 1, 1, 0, 1, 0, DateTimeKind.Utc)));
        var r = Assert.Single(db.GetJob("77", cluster: "grid", scheduler: "oar"));
        Assert.Equal(("bob", 1002, "n9", "not_measured", "no RAPL and estimate=off", 60.0), (r.User, r.Uid, r.Node, r.Status, r.Reason, r.ElapsedS));
        Assert.Equal(0, r.TotalEnergyJ);
        Assert.Empty(db.GetJob("77", cluster: "other"));
    }

    [Fact]
    public void QueriesByJobNodesUserAndUid()
    {
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        db.Upsert(Sample("10", "n2"));
        db.Upsert(Sample("10", "n1"));
        db.Upsert(Sample("9", "n1", user: "bob", uid: 1002));
        db.Upsert(Sample("100", "n1"));
        Assert.Equal(["n1", "n2"], db.GetJob("10").Select(r => r.Node));
        Assert.Equal(["10", "10", "100"], db.GetByUser("alice").Select(r => r.JobId)); // numeric order
        Assert.Equal(["9"], db.Query(new JobQuery(Uid: 1002)).Select(r => r.JobId));
        Assert.Equal(["9", "10", "10"], db.Query(new JobQuery(["10", "9"])).Select(r => r.JobId));
        Assert.Empty(db.Query(new JobQuery(["10"], Uid: 1002)));
    }

    [Fact]
    public void ConcurrentWritersAllLand()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        const int writers = 8, jobsEach = 25;
        // Every writer opens its own connection (and races on creation + migration too). What is tested is that the
        // retry carries every contention, not how long 400 transactions take: SQLite's lock is not fair, and on a
        // loaded machine a writer lost it to the others for longer than the default 30 s budget ('database is
        // locked' out of Retry, seen at load > 45 and with the test alone throttled to 3 % of a CPU). In the product
        // one drainer per node writes (the outbox's lock), and a row past its budget stays queued.
        const int unbounded = int.MaxValue;
        var all = Task.Run(() => Parallel.For(0, writers, new ParallelOptions { MaxDegreeOfParallelism = writers }, w =>
        {
            using var db = AccountingDb.Open(path, waitMs: unbounded);
            for (int j = 0; j < jobsEach; j++)
            {
                Assert.True(db.Upsert(Sample($"{j}", $"n{w}"), unbounded));
                Assert.True(db.Upsert(Sample($"{j}", $"n{w}"), unbounded)); // finalizing twice
            }
        }));
        Assert.True(all.Wait(TimeSpan.FromMinutes(10)), "8 writers still not done after 10 min: a deadlock, not contention");
        Assert.Equal(writers * jobsEach, Count(path, "jobs"));
        Assert.Equal(writers * jobsEach * 2, Count(path, "steps"));
    }

    [SkippableFact]
    public void WaitsForAnotherProcessHoldingTheWriteLock()
    {
        Skip.IfNot(File.Exists("/usr/bin/sqlite3"), "needs the sqlite3 CLI");
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        using (AccountingDb.Open(path)) { }
        var psi = new ProcessStartInfo("/usr/bin/sqlite3", [path]) { RedirectStandardInput = true, RedirectStandardOutput = true };
        using var p = Process.Start(psi)!;
        p.StandardInput.WriteLine("BEGIN IMMEDIATE; SELECT 'locked';");
        p.StandardInput.Flush();
        Assert.Equal("locked", p.StandardOutput.ReadLine());
        var sw = Stopwatch.StartNew();
        var writer = Task.Run(() =>
        {
            using var db = AccountingDb.Open(path, busyTimeoutMs: 200); // the open needs no write lock
            return db.Upsert(Sample()); // the default budget (10 s) is longer than the lock: the retry loop carries it
        });
        Thread.Sleep(1500);
        Assert.False(writer.IsCompleted);
        p.StandardInput.WriteLine("COMMIT;");
        p.StandardInput.WriteLine(".quit");
        p.StandardInput.Close();
        Assert.True(writer.Wait(TimeSpan.FromSeconds(20)));
        Assert.True(writer.Result);
        Assert.True(sw.ElapsedMilliseconds >= 1500);
        p.WaitForExit();
        Assert.Equal(1, Count(path, "jobs"));
    }

    [Fact]
    public void FromSummaryCarriesTheSpoolNumbers()
    {
        using var tmp = new TempDir();
        var meta = SmallSpool.Write(tmp.Sub("spool"));
        var s = JobSummary.FromSpool(tmp.Sub("spool"));
        var rec = JobRecord.FromSummary(s, meta, JobStatus.Complete, "", "/data/x.parquet");
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        db.Upsert(rec);
        var r = Assert.Single(db.GetJob("1234"));
        Assert.Equal(s.Job.Energy, r.Energy);
        Assert.Equal(s.Job.TotalEnergyJ, r.TotalEnergyJ);
        Assert.Equal(s.Job.MaxPowerW, r.MaxPowerW);
        Assert.Equal(s.Job.AvePowerW, r.AvePowerW);
        Assert.Equal(3.0, r.ElapsedS);
        Assert.Equal(s.Job.Start, r.Start);
        Assert.Equal(15, r.SampleCount);
        Assert.Equal(1, r.WrapAmbiguous);
        Assert.Equal(1, r.ReadErrors);
        Assert.Equal(s.Node.TotalEnergyJ, r.NodeEnergyJ);
        Assert.Equal(s.Unattributed.TotalEnergyJ, r.UnattributedEnergyJ);
        Assert.Equal(s.OtherJobs.TotalEnergyJ, r.OtherJobsEnergyJ);
        Assert.Equal("nvml-energy-counter,powercap", r.Interfaces);
        Assert.Equal("nvml=20,rapl=1000", r.Frequency);
        Assert.Equal(["1234.batch", "1234.0"], r.Steps.Select(x => x.StepId));
        Assert.Equal(s.Steps[0].Summary.Energy, r.Steps[0].Energy);
        Assert.Equal(("alice", 1001, "lab", "slurm"), (r.User, r.Uid, r.Cluster, r.Scheduler));
    }

    [SkippableFact]
    public void OnlyTheAlumetGroupReadsTheDatabase()
    {
        Skip.IfNot(File.Exists("/usr/bin/sqlite3") && Environment.UserName == "root" && File.Exists("/usr/sbin/runuser"), "needs root, runuser and the sqlite3 CLI");
        Assert.Equal(0, Process.Start("/bin/sh", ["-c", "getent group alumet >/dev/null || groupadd --system alumet"])!.WaitForExitAsync().ContinueWith(_ => 0).Result);
        using var tmp = new TempDir();
        File.SetUnixFileMode(tmp.Path, (UnixFileMode)0b111_101_101); // a root-owned 0755 directory, like /var/lib
        string path = tmp.Sub("lib/acct.db");
        using (var db = AccountingDb.Open(path))
            db.Upsert(Sample());
        // The gate's situation: an ordinary user holding the group alumet reads through the rollback journal design
        // (no write needed); the same user without the group cannot open the file.
        Assert.Equal("1234:complete", Sqlite(["-u", "nobody", "-g", "alumet"], path));
        Assert.Contains("unable to open database", Sqlite(["-u", "nobody"], path));
    }

    [SkippableFact]
    public void RootClosesAnOlderWorldReadableDatabase()
    {
        Skip.IfNot(Environment.UserName == "root", "needs root");
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        using (var db = AccountingDb.Open(path)) db.Upsert(Sample());
        File.SetUnixFileMode(path, (UnixFileMode)0b110_100_100); // 0644, as versions before the report gate made it
        using (var db = AccountingDb.Open(path)) Assert.Single(db.GetJob("1234"));
        Assert.Equal((UnixFileMode)0b110_100_000, File.GetUnixFileMode(path));
    }

    private static string Sqlite(string[] who, string path)
    {
        var psi = new ProcessStartInfo("/usr/sbin/runuser", [.. who, "--", "/usr/bin/sqlite3", "-readonly", path, "SELECT job_id || ':' || status FROM jobs"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return output.Trim();
    }

    private static JobRecord Run(string runId, DateTime start, string node = "n1", string jobId = "1234", double pkg = 180) =>
        Sample(jobId, node, pkg: pkg) with { RunId = runId, Start = start, End = start.AddHours(1) };

    [Fact]
    public void AReusedJobIdKeepsEveryRun()
    {
        // Old main: the second run of job 1234 on n1 replaced the first one's row (key without the run).
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        var t1 = new DateTime(2026, 1, 1, 8, 0, 0, DateTimeKind.Utc);
        var t2 = new DateTime(2026, 6, 1, 8, 0, 0, DateTimeKind.Utc);
        Assert.True(db.Upsert(Run(RunId.FromStart(t1), t1, pkg: 100)));
        Assert.True(db.Upsert(Run(RunId.FromStart(t2), t2, pkg: 200)));
        var all = db.GetJob("1234", runs: RunSelection.All);
        Assert.Equal([("20260101T080000000Z", 100.0), ("20260601T080000000Z", 200.0)], all.Select(r => (r.RunId, r.Energy.PackageJ)));
        Assert.All(all, r => Assert.Equal(2, r.Steps.Count));
        var latest = Assert.Single(db.GetJob("1234"));
        Assert.Equal(("20260601T080000000Z", 200.0), (latest.RunId, latest.Energy.PackageJ));
        Assert.Equal(100.0, Assert.Single(db.Query(new JobQuery(["1234"], Runs: RunSelection.All, RunId: "20260101T080000000Z"))).Energy.PackageJ);
        Assert.Equal(2, Count(tmp.Sub("acct.db"), "jobs"));
        Assert.Equal(4, Count(tmp.Sub("acct.db"), "steps"));
    }

    [Fact]
    public void LatestRunSpansNodesWhoseRunIdsDiffer()
    {
        // Without a SLUID each node names the run by its own sampler start: a few ms apart on two nodes. The earlier
        // run of the reused id ran on n1, n2 and n3; the latest only on n1 and n2: n3's old row is not part of it.
        using var tmp = new TempDir();
        using var db = AccountingDb.Open(tmp.Sub("acct.db"));
        var old = new DateTime(2026, 1, 1, 8, 0, 0, DateTimeKind.Utc);
        foreach (string n in new[] { "n1", "n2", "n3" }) db.Upsert(Run(RunId.FromStart(old), old, n, pkg: 1));
        var t = new DateTime(2026, 6, 1, 8, 0, 0, DateTimeKind.Utc);
        db.Upsert(Run(RunId.FromStart(t), t, "n1", pkg: 10));
        db.Upsert(Run(RunId.FromStart(t.AddMilliseconds(7)), t.AddMilliseconds(7), "n2", pkg: 20));
        var latest = db.GetJob("1234");
        Assert.Equal([("n1", 10.0), ("n2", 20.0)], latest.Select(r => (r.Node, r.Energy.PackageJ)));
        Assert.Equal(5, db.GetJob("1234", runs: RunSelection.All).Count);
    }

    [Fact]
    public void MigratesAVersion1DatabaseKeepingItsRows()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        using (var con = new SqliteConnection($"Data Source={path};Pooling=false"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            cmd.CommandText = Schema.Migrations[0].Sql + """
                PRAGMA user_version = 1;
                INSERT INTO jobs (cluster, scheduler, job_id, node, user, uid, start_time, end_time, total_energy_j, energy_package_j, status)
                    VALUES ('lab', 'slurm', '7', 'n1', 'alice', 1001, '2026-11-25T08:00:00.123456Z', '2026-11-25T09:00:00.000000Z', 5, 5, 'complete'),
                           ('lab', 'slurm', '8', 'n1', 'bob', 1002, '', '', 0, 0, 'not_measured');
                INSERT INTO steps (cluster, scheduler, job_id, node, step_id, energy_package_j) VALUES ('lab', 'slurm', '7', 'n1', '7.batch', 4);
                """;
            cmd.ExecuteNonQuery();
        }
        using (var db = AccountingDb.Open(path))
        {
            Assert.Equal(AccountingDb.SchemaVersion, db.UserVersion());
            var r = Assert.Single(db.GetJob("7"));
            Assert.Equal(("20261125T080000123Z", 5.0, "7.batch", 4.0), (r.RunId, r.TotalEnergyJ, Assert.Single(r.Steps).StepId, r.Steps[0].Energy.PackageJ));
            Assert.Equal("", Assert.Single(db.GetJob("8")).RunId);
            // the new key takes a second run of job 7
            Assert.True(db.Upsert(Run("20261201T000000000Z", new DateTime(2026, 12, 1, 0, 0, 0, DateTimeKind.Utc), jobId: "7")));
            Assert.Equal(2, db.GetJob("7", runs: RunSelection.All).Count);
        }
    }

    private static long Count(string path, string table)
    {
        using var con = new SqliteConnection($"Data Source={path};Pooling=false");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM {table}";
        return (long)cmd.ExecuteScalar()!;
    }
}
