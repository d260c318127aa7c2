using System.Diagnostics;
using Alumet.Hpc.Commands;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Commands;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>
/// Finalization as the hooks run it: one finalizer per job, unique temporary files, the state dir removed once the
/// Parquet file and the row exist, kept on failure and aged out.
/// </summary>
public class FinalizationTests
{
    private const ulong MaxRange = 262_143_328_850;

    /// <summary>The records the job's file is made of: its spool.bin, and at raw storage the node's reads of its windows
    /// alone on the node, which the tick stores once, in the node's spool (SpoolReader reads them merged in).</summary>
    private static long SpoolRecords(string dir) =>
        File.Exists(Path.Combine(dir, SpoolWriter.MetaFile)) ? SpoolReader.ReadAll(dir).LongCount() : 0;

    /// <summary>The bare binary as slurmd runs the Epilog: no argv, the job in the environment.</summary>
    private static Process StartEpilog(TestInstallation install, string jobId) => install.StartSlurmHook("epilog_slurmd", jobId);

    [Fact]
    public void TwoEpilogsOfOneJobFinalizeItOnceAndNeverCorruptIt()
    {
        // Raw storage: a spool of ~10 k records, so that exporting it takes long enough for the two epilogs to overlap.
        using var install = new TestInstallation(PowercapTree.Standard(2, MaxRange),
            "storage_period_ms = 0\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20");
        var job = new JobIdentity("slurm", "test", "301", "root", 0, "node1");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
        Assert.True(launched.Ok, launched.Message);
        string state = job.StateDirectory(install.Config.Paths.StateDir);
        ExecBinaryTests.WaitFor(() => SpoolRecords(state) > 0, "the first flushed records");
        install.Powercap.SetEnergy("intel-rapl:0", 1_234_567);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "node", "cpu_package").Sum(r => r.Value) == 1_234_567, "the 1.234567 J in the spool");
        Thread.Sleep(1000);
        Alumet.Hpc.Native.Libc.kill(launched.Pid, 9);
        ExecBinaryTests.WaitFor(() => ProcessState.Read(launched.Pid) is not { State: not ('Z' or 'X') }, "sampler death");
        long flushed = SpoolRecords(state);
        // At raw storage the last write can come between two splits: the finalization closes those reads with one
        // unattributed record per counter (SeriesSpool.CloseUnsplitReads), which the file then holds too.
        int closing = SeriesSpool.UnsplitNodeReads(state, SpoolWriter.ReadMeta(state)).Count;

        var epilogs = new[] { StartEpilog(install, "301"), StartEpilog(install, "301") };
        foreach (var p in epilogs)
        {
            Assert.True(p.WaitForExit(60_000));
            Assert.Equal(0, p.ExitCode);
        }

        var log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        Assert.Single(log, l => l.Contains("slurm epilog job 301 on node1: partial: job 301: sampler was not running; finalized partial from its spool"));
        // The second one waited for the first ("already finalized by another process") or, started after it had
        // finished (a loaded machine), found its marker ("already finalized"): either way, once, with the first's row.
        Assert.Single(log, l => l.Contains("slurm epilog job 301 on node1: already: job 301: already finalized") && l.Contains("(partial: the sampler died"));
        Assert.DoesNotContain(log, l => l.Contains("error"));

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("301"));
        Assert.Equal(JobStatus.Partial, row.Status);
        Assert.Equal("the sampler died before the end of the job (crash or kill); data up to its last flush kept", row.Reason);
        Assert.Equal(1.234567, row.Energy.PackageJ, 12);
        Assert.Equal(flushed + closing, Convert.ToInt64(ExecBinaryTests.Scalar($"SELECT count(*) FROM read_parquet('{row.ParquetPath}')")));
        Assert.Empty(Directory.EnumerateFiles(install.Config.Paths.DataDir, "*.tmp", SearchOption.AllDirectories));

        // The state is gone; a marker answers the next epilog.
        Assert.False(Directory.Exists(state));
        Assert.Equal("partial: the sampler died before the end of the job (crash or kill); data up to its last flush kept",
            File.ReadAllText(JobFinalizer.MarkerPath(state)));
        Assert.Equal("already", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
        Assert.Single(db.GetJob("301"));
    }

    [Fact]
    public void ManyJobsLeaveNoStateDirs()
    {
        // The count: 216 jobs left 216 state dirs (44 MB). Each exec run here finalizes its own job.
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100");
        for (int i = 1; i <= 216; i++)
            Assert.Equal(0, ExecCommand.Run(install.ConfigPath, i.ToString(), null, null, noReport: true, ["true"], samplerExecutable: TestInstallation.Binary()));

        string execState = Path.Combine(install.Config.Paths.StateDir, "exec");
        Assert.Empty(Directory.EnumerateDirectories(execState));
        var left = Directory.EnumerateFiles(execState).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(216, left.Count(f => f!.EndsWith(".finalized", StringComparison.Ordinal)));
        Assert.Equal(216, left.Count);
        Assert.True(Directory.EnumerateFiles(execState).Sum(f => new FileInfo(f).Length) < 216 * 16, "one short marker line per job");
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        Assert.Equal(216, Enumerable.Range(1, 216).Count(i => db.GetJob(i.ToString()).Count == 1));
    }

    [Fact]
    public void KeptStateAndMarkersAreRemovedOnceOlderThanStateMaxAge()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nstate_max_age_h = 24");
        string slurm = Path.Combine(install.Config.Paths.StateDir, "slurm");
        // A job whose finalization failed 2 days ago (its spool kept), one that failed an hour ago, an old marker, a new one.
        string oldDir = Directory.CreateDirectory(Path.Combine(slurm, "11")).FullName;
        File.WriteAllText(Path.Combine(oldDir, SpoolWriter.RecordsFile), new string('x', 64));
        string newDir = Directory.CreateDirectory(Path.Combine(slurm, "12")).FullName;
        File.WriteAllText(Path.Combine(newDir, SpoolWriter.RecordsFile), new string('x', 64));
        string oldMarker = Path.Combine(slurm, "13.finalized"), newMarker = Path.Combine(slurm, "14.finalized");
        File.WriteAllText(oldMarker, "complete");
        File.WriteAllText(newMarker, "complete");
        var twoDaysAgo = DateTime.UtcNow.AddDays(-2);
        File.SetLastWriteTimeUtc(Path.Combine(oldDir, SpoolWriter.RecordsFile), twoDaysAgo);
        Directory.SetLastWriteTimeUtc(oldDir, twoDaysAgo);
        File.SetLastWriteTimeUtc(oldMarker, twoDaysAgo);
        File.SetLastWriteTimeUtc(Path.Combine(newDir, SpoolWriter.RecordsFile), DateTime.UtcNow.AddHours(-1));
        Directory.SetLastWriteTimeUtc(newDir, twoDaysAgo); // the spool's own time counts, not the directory's

        // Any later job's finalization cleans up.
        Assert.Equal(0, ExecCommand.Run(install.ConfigPath, "1", null, null, noReport: true, ["true"], samplerExecutable: TestInstallation.Binary()));

        Assert.False(Directory.Exists(oldDir));
        Assert.False(File.Exists(oldMarker));
        Assert.True(Directory.Exists(newDir));
        Assert.True(File.Exists(newMarker));
    }

    /// <summary>A closed day of the node's spool (meta.json naming cluster c1, node n1; 64 bytes of records), written
    /// <paramref name="written"/>; its node file, when <paramref name="exported"/> is given, written then.</summary>
    private static string NodeDay(TestInstallation install, DateOnly day, DateTime written, DateTime? exported)
    {
        string name = day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        string dir = Directory.CreateDirectory(Path.Combine(NodeSpool.Root(install.Config), name)).FullName;
        SpoolWriter.WriteMeta(dir, new SpoolMeta { Scheduler = "node", Cluster = "c1", JobId = "node", Node = "n1" });
        File.WriteAllBytes(Path.Combine(dir, SpoolWriter.RecordsFile), new byte[64]);
        File.SetLastWriteTimeUtc(Path.Combine(dir, SpoolWriter.RecordsFile), written);
        File.SetLastWriteTimeUtc(Path.Combine(dir, SpoolWriter.MetaFile), written);
        if (exported is { } at)
        {
            string parquet = NodeSpool.ParquetPath(install.Config, "c1", "n1", name);
            Directory.CreateDirectory(Path.GetDirectoryName(parquet)!);
            File.WriteAllText(parquet, "PAR1");
            File.SetLastWriteTimeUtc(parquet, at);
        }
        return dir;
    }

    /// <summary>A job's state dir under slurm/ holding <paramref name="file"/> (node-windows or node-windows.done) naming <paramref name="day"/>.</summary>
    private static string JobNamingDay(TestInstallation install, string jobId, string file, string day)
    {
        string dir = Directory.CreateDirectory(Path.Combine(install.Config.Paths.StateDir, "slurm", jobId)).FullName;
        File.WriteAllText(Path.Combine(dir, file), $"open {day} 0\nclose 2\n");
        return dir;
    }

    private static int Exec(TestInstallation install, string jobId) =>
        ExecCommand.Run(install.ConfigPath, jobId, null, null, noReport: true, ["true"], samplerExecutable: TestInstallation.Binary());

    [Fact]
    public void AJobsFinalizationRemovesTheNodesExportedDaySpoolsNoJobReadsAndKeepsTheOthers()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nstate_max_age_h = 24");
        var now = DateTime.UtcNow;
        var today = DateOnly.FromDateTime(now);
        string Name(DateOnly d) => d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var exportedDay = NodeDay(install, today.AddDays(-2), now.AddDays(-2), now.AddDays(-1));
        var unexported = NodeDay(install, today.AddDays(-10), now.AddDays(-10), null);
        var staleFile = NodeDay(install, today.AddDays(-3), now.AddDays(-3), now.AddDays(-4)); // exported before its last write
        var todays = NodeDay(install, today, now.AddMinutes(-5), now.AddMinutes(-1));
        var namedDay = NodeDay(install, today.AddDays(-4), now.AddDays(-4), now.AddDays(-3));
        var doneDay = NodeDay(install, today.AddDays(-5), now.AddDays(-5), now.AddDays(-4));
        string reader = JobNamingDay(install, "77", NodeReadWindows.FileName, Name(today.AddDays(-4)));
        JobNamingDay(install, "78", NodeReadWindows.DoneFileName, Name(today.AddDays(-5)));
        // A symbolic link with a day's name is never followed, even to an exported day's spool elsewhere.
        string elsewhere = NodeDay(install, today.AddDays(-6), now.AddDays(-6), now.AddDays(-5));
        string moved = install.PathOf("elsewhere");
        Directory.Move(elsewhere, moved);
        Directory.CreateSymbolicLink(elsewhere, moved);

        Assert.Equal(0, Exec(install, "1"));

        Assert.False(Directory.Exists(exportedDay), "an exported day's spool that no job reads was not removed");
        Assert.False(Directory.Exists(doneDay));
        Assert.True(Directory.Exists(unexported));
        Assert.True(Directory.Exists(staleFile));
        Assert.True(Directory.Exists(todays));
        Assert.True(Directory.Exists(namedDay));
        Assert.True(File.Exists(Path.Combine(moved, SpoolWriter.RecordsFile)));
        Assert.Equal(moved, new DirectoryInfo(elsewhere).LinkTarget);
        Assert.Empty(Directory.EnumerateDirectories(NodeSpool.Root(install.Config), "*.removing-*"));
        string warning = $"node spool {unexported} is kept: it is older than state_max_age_h and its node file was never written after it (export it with alumet-hpc finalize-job --node-day {unexported})";
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.EndsWith(warning, StringComparison.Ordinal));

        // The reader's state ages out (state_max_age_h = 24): its day goes with it, at the same finalization. The
        // unexported day's warning is not said again.
        foreach (string f in Directory.EnumerateFiles(reader)) File.SetLastWriteTimeUtc(f, now.AddDays(-2));
        Directory.SetLastWriteTimeUtc(reader, now.AddDays(-2));
        Assert.Equal(0, Exec(install, "2"));
        Assert.False(Directory.Exists(reader));
        Assert.False(Directory.Exists(namedDay), "the day of a pruned job's node-windows was not removed");
        Assert.True(Directory.Exists(unexported));
        Assert.True(Directory.Exists(staleFile));
        Assert.True(Directory.Exists(todays));
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.EndsWith(warning, StringComparison.Ordinal));
    }

    [Fact]
    public void AFailedFinalizationKeepsTheStateAndTheNextEpilogFinishesIt()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100");
        var job = new JobIdentity("slurm", "test", "302", "root", 0, "node1");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
        Assert.True(launched.Ok, launched.Message);
        string state = job.StateDirectory(install.Config.Paths.StateDir);
        ExecBinaryTests.WaitFor(() => SpoolRecords(state) > 0, "the first flushed records");
        install.Powercap.SetEnergy("intel-rapl:0", 2_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:302", "cpu_package").Sum(r => r.Value) == 2_000_000, "the job's 2 J in the spool");

        // The row cannot be made durable: a file where the node's outbox directory goes. Both the node sampler's
        // finalization and the epilog's own attempt from the spool fail; nothing may be lost or marked finalized.
        string outbox = Path.Combine(install.Config.Paths.StateDir, Outbox.DirectoryName);
        File.WriteAllText(outbox, "not a directory");
        var first = StartEpilog(install, "302");
        Assert.True(first.WaitForExit(60_000));
        Assert.Equal(0, first.ExitCode);
        var log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        Assert.Single(log, l => l.Contains("slurm epilog job 302 on node1: error: job 302: stop/finalize failed: ") && l.Contains(outbox));
        Assert.True(File.Exists(Path.Combine(state, SpoolWriter.RecordsFile)), "no row: the spool is kept");
        Assert.Null(JobFinalizer.FinalizedLine(state));
        Assert.False(File.Exists(install.Config.Paths.Database) && AccountingDb.OpenReadOnly(install.Config.Paths.Database).GetJob("302").Count > 0);

        // Space fixed: the next epilog (slurmd retries it, or the admin runs it) finishes the job from the kept spool.
        File.Delete(outbox);
        var second = StartEpilog(install, "302");
        Assert.True(second.WaitForExit(60_000));
        Assert.Equal(0, second.ExitCode);
        Assert.False(Directory.Exists(state));
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("302"));
        Assert.Equal(JobStatus.Partial, row.Status);
        // The true reason: the first attempt's failure, kept in the state dir by the process that saw it.
        Assert.StartsWith("the node sampler did not know the job (error job slurm/302 is not registered); data up to its last flush kept; an earlier finalization failed (", row.Reason);
        Assert.Contains(outbox, row.Reason);
        Assert.Equal(2.0, row.Energy.PackageJ, 12);
    }
}
