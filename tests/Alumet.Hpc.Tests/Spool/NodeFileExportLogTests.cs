using Alumet.Hpc.Jobs;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>What the log says of a closed day's export that worked after failed attempts (Log is process-global: one at a time).</summary>
[Collection("Log")]
public sealed class NodeFileExportLogTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Hour = 3_600_000 * Ms;
    private readonly Fakes.NodeRig _rig = new();
    private string LogFile => _rig.Install.PathOf("test.log");

    public NodeFileExportLogTests() => Alumet.Hpc.Core.Log.Configure(LogFile, "alumet-hpc", syslog: false, stderr: false);

    public void Dispose()
    {
        Alumet.Hpc.Core.Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        _rig.Dispose();
    }

    /// <summary>The real export, then at once what another job's finalization on the node does once the day's lock is
    /// free (JobFinalizer's JobStateCleanup.Prune): it removes the exported day, its export-failed mark with it.</summary>
    private sealed class PrunedRightAfterTheExport(Alumet.Hpc.Config.AlumetConfig cfg) : IJobFinalization
    {
        private readonly InProcessFinalization _inner = new(cfg);
        public JobFinalizer.Outcome Finalize(string stateDir, bool complete, string reason) => _inner.Finalize(stateDir, complete, reason);
        public void RetryQueuedRows(string what) => _inner.RetryQueuedRows(what);
        public void RetryExports() => _inner.RetryExports();
        public void RecordNotMeasured(JobIdentity job, string reason) => _inner.RecordNotMeasured(job, reason);

        public string ExportNodeDay(string spoolDir)
        {
            string file = _inner.ExportNodeDay(spoolDir);
            JobStateCleanup.Prune(cfg, DateTime.UtcNow);
            return file;
        }
    }

    /// <summary>
    /// A closed day whose export failed twice, then worked, while another job's finalization pruned the exported day as
    /// soon as the export let go of it (FinalizationTests.AClosedDayWhoseExportFailedIsExportedAgainByTheNodeSamplerThenRemovedSaidOnce
    /// failed 1 run in 4 so: its exec job's finalization): the log says once that the node file was written after 2 failed
    /// attempts, and no failure. On 6dd3d2a the sampler read the count from the day's mark after the export had released
    /// the day, found the day gone, and said nothing of the 2 attempts (the child's line alone, without them).
    /// </summary>
    [Fact]
    public void TheFailedAttemptsAreSaidOnceEvenWhenTheDayIsPrunedRightAfterItsExport()
    {
        var cfg = _rig.Config();
        var now = DateTime.UtcNow;
        string day = Jobs.FinalizationTests.NodeDay(cfg, DateOnly.FromDateTime(now).AddDays(-2), now.AddDays(-2), Jobs.FinalizationTests.Blocked);
        string blocked = Path.Combine(cfg.Paths.DataDir, Jobs.FinalizationTests.Blocked);
        Directory.CreateDirectory(cfg.Paths.DataDir);
        File.WriteAllText(blocked, "not a directory");
        string mark = Path.Combine(day, NodeSpool.ExportFailedFile);
        var node = _rig.NewNode(cfg, new PrunedRightAfterTheExport(cfg), retryDayExports: true);

        node.Housekeep(1 * Ms);
        node.WaitForOutboxRetry(); // the day's export retry too
        node.Housekeep(Hour + 1 * Ms);
        node.WaitForOutboxRetry();
        Assert.Equal(2, File.ReadAllLines(mark).Length);

        File.Delete(blocked);
        node.Housekeep(2 * Hour + 2 * Ms);
        node.WaitForOutboxRetry();
        node.Dispose();
        Assert.False(Directory.Exists(day), "the exported day was not pruned");

        string file = NodeSpool.ParquetPath(cfg, Jobs.FinalizationTests.Blocked, "n1", Path.GetFileName(day));
        var log = File.ReadAllLines(LogFile);
        string written = Assert.Single(log, l => l.Contains($"node file {file}: written from {day}", StringComparison.Ordinal));
        Assert.EndsWith($"node file {file}: written from {day} after 2 failed attempt(s)", written);
        Assert.Single(log, l => l.Contains("export failed", StringComparison.Ordinal)); // the first attempt's, said once
    }
}
