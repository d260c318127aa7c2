using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// One unreadable entry in a node's outbox (left for an administrator), then a job through the real binary as slurmd
/// runs its Prolog and Epilog. The entry used to be logged as an error by every drain — the prolog's, the finalizer's,
/// the epilog's, then every background retry of the job's sampler for retry_s (its row counted as "not stored" because
/// the entry was left) — and the stored row was logged as a warning.
/// </summary>
public sealed class OutboxUnreadableEntryTests
{
    [Fact]
    public void AnUnreadableEntryIsLoggedOnceAndOtherRowsAreStoredQuietly()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, 262_143_328_850),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0",
            extraToml: "[database]\nretry_s = 30\n");
        string dir = Outbox.Of(install.Config).Directory;
        Directory.CreateDirectory(dir);
        string garbage = Path.Combine(dir, "20261125T080000000-1-deadbeef.row.json");
        File.WriteAllText(garbage, "{ not a row");
        foreach (string job in new[] { "731", "732" })
            foreach (string context in new[] { "prolog_slurmd", "epilog_slurmd" })
            {
                using var p = install.StartSlurmHook(context, job);
                Assert.True(p.WaitForExit(60_000));
                if (context == "prolog_slurmd") Thread.Sleep(300);
            }
        Thread.Sleep(4000); // a background retry of the job's sampler (1 s, then 2 s) would log it again
        var log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        Assert.Single(log, l => l.Contains($"outbox entry {garbage} is unreadable", StringComparison.Ordinal));
        Assert.DoesNotContain(log, l => l.Contains(" warning: job 73", StringComparison.Ordinal));
        foreach (string job in new[] { "731", "732" })
            Assert.Single(log, l => l.Contains($"slurm epilog job {job} on node1: stopped: job {job}: node sampler finalized it in ", StringComparison.Ordinal)
                && l.Contains("(complete) (", StringComparison.Ordinal));
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        Assert.Equal(JobStatus.Complete, Assert.Single(db.GetJob("732")).Status);
        Assert.True(File.Exists(garbage)); // still the administrator's
    }
}
