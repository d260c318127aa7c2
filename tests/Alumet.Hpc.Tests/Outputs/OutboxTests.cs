using System.Diagnostics;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;
using Xunit;

namespace Alumet.Hpc.Tests.Outputs;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class OutboxTests
{
    private static AlumetConfig Config(TempDir tmp, double hookWaitS = 1) => new()
    {
        Paths = new PathsSection { StateDir = tmp.Sub("state"), Database = tmp.Sub("acct.db") },
        Database = new DatabaseSection { HookWaitS = hookWaitS, RetryS = 0 },
    };

    [Fact]
    public void AnEntryIsAPrivateFileThatRoundTripsTheWholeRow()
    {
        using var tmp = new TempDir();
        var outbox = new Outbox(tmp.Sub("outbox"));
        var rec = AccountingDbTests.Sample() with { RunId = "20261125T080000000Z" };
        string entry = outbox.Put(rec);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(entry));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(outbox.Directory));
        var back = Outbox.Read(entry);
        Assert.Equal(rec with { Steps = [] }, back with { Steps = [] });
        Assert.Equal(rec.Steps, back.Steps);
        Assert.Equal("20261125T080000000Z", back.RunId);
        Assert.Equal([entry], outbox.Pending());
        Assert.Empty(Directory.GetFiles(outbox.Directory, "*.tmp")); // renamed into place
    }

    [SkippableFact]
    public void ABusyDatabaseQueuesTheRowWithinTheWaitAndSaysSo()
    {
        Skip.IfNot(DbLock.Available, "needs the sqlite3 CLI");
        using var tmp = new TempDir();
        var cfg = Config(tmp);
        using (AccountingDb.Open(cfg.Paths.Database)) { }
        var rec = AccountingDbTests.Sample() with { RunId = "r1" };
        using (new DbLock(cfg.Paths.Database))
        {
            var sw = Stopwatch.StartNew();
            var (result, text) = Outbox.Deliver(rec, cfg, TimeSpan.FromSeconds(1));
            Assert.InRange(sw.Elapsed.TotalSeconds, 0.9, 3.0); // the wait, plus at most one statement's busy timeout
            Assert.Equal((0, 1), (result.Stored, result.Left));
            Assert.StartsWith("database busy", result.Problem);
            Assert.Contains("queued in " + Outbox.Of(cfg).Directory, text);
            Assert.Single(Outbox.Of(cfg).Pending());
        }
        var r = Outbox.Of(cfg).TimedDrain(cfg, TimeSpan.FromSeconds(5));
        Assert.Equal((1, 0, (string?)null), (r.Stored, r.Left, r.Problem));
        Assert.Empty(Outbox.Of(cfg).Pending());
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        Assert.Equal(("r1", JobStatus.Complete, ""), Assert.Single(db.GetJob("1234")) is var row ? (row.RunId, row.Status, row.Reason) : default);
    }

    [SkippableFact]
    public void OpeningMigratesInsideTheRetryLoop()
    {
        // Old main read PRAGMA user_version outside the retry loop: one busy timeout (here 0.5 s, the lock 3 s) failed the open.
        Skip.IfNot(DbLock.Available, "needs the sqlite3 CLI");
        using var tmp = new TempDir();
        string path = tmp.Sub("acct.db");
        File.WriteAllBytes(path, []);
        var lk = new DbLock(path);
        var sw = Stopwatch.StartNew();
        var writer = Task.Run(() =>
        {
            using var db = AccountingDb.Open(path, busyTimeoutMs: 500);
            return db.Upsert(AccountingDbTests.Sample());
        });
        Thread.Sleep(3000);
        Assert.False(writer.IsCompleted);
        lk.Dispose();
        Assert.True(writer.Wait(TimeSpan.FromSeconds(20)));
        Assert.True(writer.Result);
        Assert.True(sw.ElapsedMilliseconds >= 3000);
    }

    [Fact]
    public void AnUnreachableDatabaseLeavesEveryEntryAndAWorseLateRowNeverWins()
    {
        using var tmp = new TempDir();
        var cfg = Config(tmp);
        cfg.Paths.Database = "/proc/no-such-dir/acct.db"; // cannot be created
        var complete = AccountingDbTests.Sample() with { RunId = "r1" };
        var notMeasured = complete with { Status = JobStatus.NotMeasured, Reason = "late duplicate", Steps = [] };
        Assert.Equal(1, Outbox.Deliver(complete, cfg, TimeSpan.FromSeconds(1)).Result.Left);
        Assert.Equal(2, Outbox.Deliver(notMeasured, cfg, TimeSpan.FromSeconds(1)).Result.Left);
        cfg.Paths.Database = tmp.Sub("acct.db");
        var r = Outbox.Of(cfg).TimedDrain(cfg, TimeSpan.FromSeconds(5));
        Assert.Equal((2, 0), (r.Stored, r.Left));
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        var row = Assert.Single(db.GetJob("1234"));
        Assert.Equal((JobStatus.Complete, 2), (row.Status, row.Steps.Count));
    }

    [Fact]
    public void ARowStoredBesideAnUnreadableEntryIsReportedStoredAndTheEntryIsNamedAsSuch()
    {
        // Seen on the multi-node lab: an epilog logged "row queued ... (unreadable entries)" for a row that was stored,
        // because another entry was still in the outbox. The row's own entry decides; the problem names what is left.
        using var tmp = new TempDir();
        var cfg = Config(tmp);
        var outbox = Outbox.Of(cfg);
        Directory.CreateDirectory(outbox.Directory);
        string garbage = Path.Combine(outbox.Directory, "00000000T000000000-1-deadbeef.row.json");
        File.WriteAllText(garbage, "{ not json");
        var (result, text) = Outbox.Deliver(AccountingDbTests.Sample() with { RunId = "r1" }, cfg, TimeSpan.FromSeconds(2));
        Assert.Equal($"row stored in {tmp.Sub("acct.db")}", text);
        // Left is what a retry may still store: the unreadable entry is the administrator's (it used to count, so the row
        // read as "not stored" and its sampler retried for retry_s).
        Assert.Equal((1, 0, $"1 unreadable entry left for an administrator: {garbage}"), (result.Stored, result.Left, result.Problem));
        Assert.Equal([garbage], outbox.Pending());
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        Assert.Single(db.GetJob("1234"));
    }
}

/// <summary>Temps left in the outbox by writers killed mid-write; reads the log (process-global), so in the "Log" collection.</summary>
[Collection("Log")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class OutboxLeftoverTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private string LogFile => _tmp.Sub("alumet.log");

    public OutboxLeftoverTests() => Alumet.Hpc.Core.Log.Configure(LogFile, "alumet-hpc", syslog: false, stderr: false);

    public void Dispose()
    {
        Alumet.Hpc.Core.Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        _tmp.Dispose();
    }

    /// <summary>A pid that was a process and is no more (started, exited and reaped).</summary>
    private static int DeadPid()
    {
        using var p = Process.Start("/bin/true")!;
        p.WaitForExit();
        return p.Id;
    }

    /// <summary>A temp under AtomicFile's name for an entry of <paramref name="pid"/>, last written <paramref name="age"/> ago.</summary>
    private static string Temp(Outbox outbox, int pid, string random, TimeSpan age, byte[] content)
    {
        string path = Path.Combine(outbox.Directory, $"20261201T120000000000{random[^1]}-{pid}-0badf00d.row.json.{pid}.{random}.tmp");
        File.WriteAllBytes(path, content);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow - age);
        return path;
    }

    [Theory]
    [InlineData("20261201T120000000000-77-0badf00d.row.json.77.00000000deadbeef.tmp", 77)]
    [InlineData("20261201T120000000000-77-0badf00d.row.json", 0)]         // an entry
    [InlineData("20261201T120000000000-77-0badf00d.row.json..tmp", 0)]
    [InlineData("20261201T120000000000-77-0badf00d.row.json.x.tmp", 0)]
    [InlineData("20261201T120000000000-77-0badf00d.row.json.0.beef.tmp", 0)]
    [InlineData("20261201T120000000000-77-0badf00d.row.json.-5.beef.tmp", 0)]
    [InlineData("20261201T120000000000-77-0badf00d.row.json.5.nothex.tmp", 0)]
    [InlineData(".row.json.5.beef.tmp", 0)]
    public void OnlyAtomicFileTempNamesGiveAWriterPid(string name, int pid)
    {
        Assert.Equal(pid != 0, Outbox.TryWriterPid(name, out int found));
        Assert.Equal(pid, found);
    }

    [Fact]
    public void TheNameAtomicFileWritesReadsBackItsTargetAndWriter()
    {
        string temp = Path.GetFileName(AtomicFile.TempPath("/outbox/20261201T120000000000-77-0badf00d.row.json"));
        Assert.True(AtomicFile.TryParseTemp(temp, out string target, out int pid));
        Assert.Equal(("20261201T120000000000-77-0badf00d.row.json", Environment.ProcessId), (target, pid));
        Assert.True(Outbox.TryWriterPid(temp, out int writer));
        Assert.Equal(Environment.ProcessId, writer);
    }

    [Fact]
    public void TempsOfGoneWritersAreRemovedOnceWithTheReasonAndNoRowIsLost()
    {
        var cfg = new AlumetConfig
        {
            Paths = new PathsSection { StateDir = _tmp.Sub("state"), Database = _tmp.Sub("acct.db") },
            Database = new DatabaseSection { HookWaitS = 2, RetryS = 0 },
        };
        var outbox = Outbox.Of(cfg);
        string queued = outbox.Put(AccountingDbTests.Sample(jobId: "41") with { RunId = "r41" }); // complete: stored, never lost
        byte[] row = File.ReadAllBytes(queued);
        byte[] half = row[..(row.Length / 2)];
        int dead = DeadPid(), live = Environment.ProcessId;
        string killed = Temp(outbox, dead, "00000000000000a1", TimeSpan.FromMinutes(2), half);  // killed mid-write 2 min ago
        string reused = Temp(outbox, live, "00000000000000a2", TimeSpan.FromHours(25), half);   // its pid lives on in another process
        string filling = Temp(outbox, live, "00000000000000a3", TimeSpan.Zero, half);           // a live writer filling it now
        string slow = Temp(outbox, live, "00000000000000a4", TimeSpan.FromMinutes(2), half);    // a live writer, slow
        string recent = Temp(outbox, dead, "00000000000000a5", TimeSpan.FromSeconds(10), row);  // within the grace: kept

        var (result, text) = Outbox.Deliver(AccountingDbTests.Sample(jobId: "42") with { RunId = "r42" }, cfg, TimeSpan.FromSeconds(2));

        Assert.Equal($"row stored in {cfg.Paths.Database}", text);
        Assert.Equal((2, 0, (string?)null), (result.Stored, result.Left, result.Problem));
        string[] Temps() => Directory.GetFiles(outbox.Directory, "*.tmp").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal([filling, slow, recent], Temps()); // killed and reused removed
        string[] Logged() => File.ReadAllLines(LogFile).Select(l => l[(l.IndexOf(" warning: ", StringComparison.Ordinal) + 1)..]).Order(StringComparer.Ordinal).ToArray();
        string[] expected =
        [
            $"warning: outbox: removed {killed}, a temporary file never renamed into an entry: its writer, pid {dead}, is gone (killed mid-write 2 min ago)",
            $"warning: outbox: removed {reused}, a temporary file never renamed into an entry: written 25 h ago (its pid {live} was reused)",
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), Logged());

        // An empty outbox's drain cleans too, and says nothing twice: the kept temps are still someone's.
        File.SetLastWriteTimeUtc(recent, DateTime.UtcNow - TimeSpan.FromMinutes(3));
        var again = outbox.TimedDrain(cfg, TimeSpan.FromSeconds(2));
        Assert.Equal((0, 0), (again.Stored, again.Left));
        Assert.Equal([filling, slow], Temps());
        Assert.Equal(
            expected.Append($"warning: outbox: removed {recent}, a temporary file never renamed into an entry: its writer, pid {dead}, is gone (killed mid-write 3 min ago)").Order(StringComparer.Ordinal),
            Logged());
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        Assert.Equal(["r41", "r42"], new[] { "41", "42" }.Select(j => Assert.Single(db.GetJob(j)).RunId));
    }
}
