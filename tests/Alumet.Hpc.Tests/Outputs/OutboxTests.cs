using System.Diagnostics;
using Alumet.Hpc.Config;
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
        Assert.Equal((1, 1, "1 unreadable entry left for an administrator"), (result.Stored, result.Left, result.Problem));
        Assert.Equal([garbage], outbox.Pending());
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        Assert.Single(db.GetJob("1234"));
    }
}
