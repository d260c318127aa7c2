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

    [Fact]
    public void CreatesDirectoryAndFileWithModesAndMigrates()
    {
        using var tmp = new TempDir();
        string path = Path.Combine(tmp.Path, "a", "b", "acct.db");
        using (var db = AccountingDb.Open(path))
            Assert.Equal(AccountingDb.SchemaVersion, db.UserVersion());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherExecute, File.GetUnixFileMode(Path.Combine(tmp.Path, "a", "b")));
        using var con = new SqliteConnection($"Data Source={path};Pooling=false");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode; ";
        Assert.Equal("delete", cmd.ExecuteScalar()); // not WAL: see AccountingDb (non-root readers)
        cmd.CommandText = "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)";
        Assert.Equal("jobs,steps", cmd.ExecuteScalar());
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
        // Every writer opens its own connection (and races on creation + migration too).
        Parallel.For(0, writers, new ParallelOptions { MaxDegreeOfParallelism = writers }, w =>
        {
            using var db = AccountingDb.Open(path);
            for (int j = 0; j < jobsEach; j++)
            {
                db.Upsert(Sample($"{j}", $"n{w}"));
                db.Upsert(Sample($"{j}", $"n{w}")); // finalizing twice
            }
        });
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
            using var db = AccountingDb.Open(path, busyTimeoutMs: 200); // shorter than the lock: the retry loop must carry it
            return db.Upsert(Sample());
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
    public void NonRootUserCanReadTheDatabase()
    {
        Skip.IfNot(File.Exists("/usr/bin/sqlite3") && Environment.UserName == "root" && File.Exists("/usr/sbin/runuser"), "needs root, runuser and the sqlite3 CLI");
        using var tmp = new TempDir();
        File.SetUnixFileMode(tmp.Path, (UnixFileMode)0b111_101_101); // a root-owned 0755 directory, like /var/lib/alumet-hpc
        string path = tmp.Sub("acct.db");
        using (var db = AccountingDb.Open(path))
            db.Upsert(Sample());
        var psi = new ProcessStartInfo("/usr/sbin/runuser", ["-u", "nobody", "--", "/usr/bin/sqlite3", "-readonly", path, "SELECT job_id || ':' || status FROM jobs"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal("1234:complete", output.Trim());
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
