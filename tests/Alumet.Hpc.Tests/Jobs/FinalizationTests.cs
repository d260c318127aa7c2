using System.Diagnostics;
using System.Text.RegularExpressions;
using Alumet.Hpc.Commands;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Commands;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Outputs;

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
        Assert.Equal($"partial: the sampler died before the end of the job (crash or kill); data up to its last flush kept\nrun={row.RunId}\n",
            File.ReadAllText(JobFinalizer.MarkerPath(state)));
        Assert.Equal("already", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
        Assert.Single(db.GetJob("301"));
    }

    [Fact]
    public void ManyJobsLeaveNoStateDirs()
    {
        // The issue's count: 216 jobs left 216 state dirs (44 MB). Each exec run here finalizes its own job.
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100");
        var ids = Enumerable.Range(0, 216).Select(_ => ExecIds.Next()).ToList();
        foreach (string id in ids)
            Assert.Equal(0, ExecBinary.Exec(install, id, ["true"]).ExitCode);

        string execState = Path.Combine(install.Config.Paths.StateDir, "exec");
        Assert.Empty(Directory.EnumerateDirectories(execState));
        var left = Directory.EnumerateFiles(execState).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(216, left.Count(f => f!.EndsWith(".finalized", StringComparison.Ordinal)));
        Assert.Equal(216, left.Count);
        Assert.True(Directory.EnumerateFiles(execState).Sum(f => new FileInfo(f).Length) < 216 * 48, "one short marker per job (its outcome and run)");
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        Assert.Equal(216, ids.Count(id => db.GetJob(id).Count == 1));
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
        Assert.Equal(0, Exec(install));

        Assert.False(Directory.Exists(oldDir));
        Assert.False(File.Exists(oldMarker));
        Assert.True(Directory.Exists(newDir));
        Assert.True(File.Exists(newMarker));
    }

    private const long Sec = 1_000_000_000;

    /// <summary>
    /// A kept state dir whose Parquet export failed (<c>export-pending</c>: a later job's end retries it) holds the only
    /// copy of the job's data: it is kept whatever its age, and said once.
    /// </summary>
    [Fact]
    public void AKeptStateWhoseExportIsPendingIsNeverRemovedByAgeAndSaidOnce()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nstate_max_age_h = 24");
        string dir = Directory.CreateDirectory(Path.Combine(install.Config.Paths.StateDir, "slurm", "15")).FullName;
        File.WriteAllText(Path.Combine(dir, SpoolWriter.RecordsFile), new string('x', 64));
        File.WriteAllText(Path.Combine(dir, SamplerFiles.ExportPending), "{}");
        var twoDaysAgo = DateTime.UtcNow.AddDays(-2);
        foreach (string f in Directory.EnumerateFiles(dir)) File.SetLastWriteTimeUtc(f, twoDaysAgo);
        Directory.SetLastWriteTimeUtc(dir, twoDaysAgo);

        Assert.Equal(0, Exec(install));
        Assert.Equal(0, Exec(install));

        Assert.True(File.Exists(Path.Combine(dir, SpoolWriter.RecordsFile)), "a kept spool whose export is pending (the only copy) was removed by age");
        string warning = $"job state {dir} is kept: it is older than state_max_age_h and its Parquet export is pending (its spool is the only copy; a later job's end on this node retries it)";
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.EndsWith(warning, StringComparison.Ordinal));
    }

    /// <summary>A cluster name whose directory in data_dir the tests make a file: a day's export then fails.</summary>
    internal const string Blocked = "blocked";

    /// <summary>A closed day of the node's spool as the sampler writes it (meta.json naming <paramref name="cluster"/> and
    /// node n1, one series, two records), last written <paramref name="written"/>.</summary>
    internal static string NodeDay(AlumetConfig cfg, DateOnly day, DateTime written, string cluster = "c1", int records = 2)
    {
        string name = day.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        string dir = Directory.CreateDirectory(Path.Combine(NodeSpool.Root(cfg), name)).FullName;
        var meta = TestSpools.Meta("node", "n1");
        (meta.Scheduler, meta.Cluster) = ("node", cluster);
        meta.Series.Add(TestSpools.S("node", "cpu_package", "0"));
        TestSpools.Write(dir, meta, [.. Enumerable.Range(1, records).Select(i => TestSpools.R(TestSpools.T0 + i * Sec, Sec, 4 + i, 0))]);
        File.SetLastWriteTimeUtc(Path.Combine(dir, SpoolWriter.RecordsFile), written);
        File.SetLastWriteTimeUtc(Path.Combine(dir, SpoolWriter.MetaFile), written);
        return dir;
    }

    /// <summary>
    /// A day exported, pruned, then opened again by a sampler whose wall clock was stepped back past the prune's margin:
    /// the fresh spool holds a part of the day only, and its export goes to a file of its own beside the day's; on
    /// ca16160 it replaced the day's file (3 rows) with that part (1 row). An export of that spool once it grew
    /// replaces its own part, and the day's file is never touched.
    /// </summary>
    [Fact]
    public void AFreshSpoolOfAnExportedAndPrunedDayNeverReplacesTheDaysFile()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100");
        var day = new DateOnly(2026, 11, 20);
        string dir = Exported(install, NodeDay(install.Config, day, DateTime.UtcNow.AddDays(-10), records: 3));
        string file = NodeSpool.ParquetPath(install.Config, "c1", "n1", "2026-11-20");
        long Rows(string f) => Convert.ToInt64(Alumet.Hpc.Tests.Commands.ExecBinaryTests.Scalar($"SELECT count(*) FROM read_parquet('{f}')"));
        Assert.Equal(3, Rows(file));

        Directory.Delete(dir, recursive: true); // pruned
        Exported(install, NodeDay(install.Config, day, DateTime.UtcNow, records: 1));
        string part = file[..^".parquet".Length] + ".part1.parquet";
        Assert.Equal(3L, Rows(file)); // the day's file kept whole
        Assert.Equal(1L, Rows(part));

        // The same spool grown (its sampler appended; its `exported` record still names the part): exported over its part.
        Assert.Equal(dir, NodeDay(install.Config, day, DateTime.UtcNow, records: 2));
        Exported(install, dir);
        long grown = NodeReadWindows.RecordsIn(dir);
        Assert.True(grown >= 2, $"{grown} records after the spool grew");
        Assert.Equal((3L, grown, false), (Rows(file), Rows(part), File.Exists(file[..^".parquet".Length] + ".part2.parquet")));
    }

    /// <summary>Exports a closed day as the node sampler does: <c>alumet-hpc finalize-job --node-day</c> (the published binary).</summary>
    private static string Exported(TestInstallation install, string dayDir)
    {
        using var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["finalize-job", "--config", install.ConfigPath, "--node-day", dayDir])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string answer = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, answer);
        return dayDir;
    }

    /// <summary>A job's state dir under slurm/ holding <paramref name="file"/> (node-windows or node-windows.done) naming <paramref name="day"/>.</summary>
    private static string JobNamingDay(TestInstallation install, string jobId, string file, string day, string? text = null)
    {
        string dir = Directory.CreateDirectory(Path.Combine(install.Config.Paths.StateDir, "slurm", jobId)).FullName;
        File.WriteAllText(Path.Combine(dir, file), text ?? $"open {day} 0\nclose 2\n");
        return dir;
    }

    /// <summary>An exec job on the test's installation, its id from <see cref="ExecIds"/> (its cgroup is the machine's).</summary>
    private static int Exec(TestInstallation install) =>
        ExecBinary.Exec(install, ExecIds.Next(), ["true"]).ExitCode;

    [Fact]
    public void AJobsFinalizationRemovesTheNodesExportedDaySpoolsNoJobReadsAndKeepsTheOthers()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nstate_max_age_h = 24");
        var now = DateTime.UtcNow;
        var today = DateOnly.FromDateTime(now);
        string Name(DateOnly d) => d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        // Days whose export must keep failing name a cluster whose directory is a file: the node sampler's retries of
        // their export (at its start) fail too, whenever they run.
        Directory.CreateDirectory(install.Config.Paths.DataDir);
        File.WriteAllText(Path.Combine(install.Config.Paths.DataDir, Blocked), "not a directory");
        var exportedDay = Exported(install, NodeDay(install.Config, today.AddDays(-2), now.AddDays(-2)));
        var unexported = NodeDay(install.Config, today.AddDays(-10), now.AddDays(-10), Blocked);
        // Exported, then written again (a sampler reopened it): its node file does not hold the last record.
        var staleFile = Exported(install, NodeDay(install.Config, today.AddDays(-3), now.AddDays(-3)));
        var staleMeta = SpoolWriter.ReadMeta(staleFile);
        staleMeta.Cluster = Blocked;
        TestSpools.Write(staleFile, staleMeta, [TestSpools.R(TestSpools.T0 + 3 * Sec, Sec, 7, 0)]);
        var todays = Exported(install, NodeDay(install.Config, today, now.AddMinutes(-5)));
        var namedDay = Exported(install, NodeDay(install.Config, today.AddDays(-4), now.AddDays(-4)));
        var doneDay = Exported(install, NodeDay(install.Config, today.AddDays(-5), now.AddDays(-5)));
        string reader = JobNamingDay(install, "77", NodeReadWindows.FileName, Name(today.AddDays(-4)));
        JobNamingDay(install, "78", NodeReadWindows.DoneFileName, Name(today.AddDays(-5)));
        // A damaged line (a roll without its record index) names no window, yet the day it names is kept: never fewer.
        var damagedDay = Exported(install, NodeDay(install.Config, today.AddDays(-7), now.AddDays(-7)));
        JobNamingDay(install, "79", NodeReadWindows.FileName, Name(today.AddDays(-7)), $"open - 0\nroll 36 {Name(today.AddDays(-7))}\n");
        // A symbolic link with a day's name is never followed, even to an exported day's spool elsewhere.
        string elsewhere = Exported(install, NodeDay(install.Config, today.AddDays(-6), now.AddDays(-6)));
        string moved = install.PathOf("elsewhere");
        Directory.Move(elsewhere, moved);
        Directory.CreateSymbolicLink(elsewhere, moved);

        Assert.Equal(0, Exec(install));

        Assert.False(Directory.Exists(exportedDay), "an exported day's spool that no job reads was not removed");
        Assert.False(Directory.Exists(doneDay));
        Assert.True(Directory.Exists(unexported));
        Assert.True(Directory.Exists(staleFile));
        Assert.True(Directory.Exists(todays));
        Assert.True(Directory.Exists(namedDay));
        Assert.True(Directory.Exists(damagedDay), "a day named only in a damaged line of a job's node-windows was removed");
        Assert.True(File.Exists(Path.Combine(moved, SpoolWriter.RecordsFile)));
        Assert.Equal(moved, new DirectoryInfo(elsewhere).LinkTarget);
        Assert.Empty(Directory.EnumerateDirectories(NodeSpool.Root(install.Config), "*.removing-*"));
        string warning = $"node spool {unexported} is kept: it is older than state_max_age_h and its node file does not hold all of it (the node sampler retries its export every hour; alumet-hpc finalize-job --node-day {unexported} exports it now)";
        // Said by this finalization, or by the next when the node sampler's start-up retry of that day's export held the
        // day's lock as this one pruned (a loaded machine: the pruner leaves a day being exported to the next one).
        int Said() => File.ReadAllLines(install.PathOf("alumet-hpc.log")).Count(l => l.EndsWith(warning, StringComparison.Ordinal));
        Assert.InRange(Said(), 0, 1);

        // The reader's state ages out (state_max_age_h = 24): its day goes with it, at the same finalization. The
        // unexported day's warning is said once in all.
        foreach (string f in Directory.EnumerateFiles(reader)) File.SetLastWriteTimeUtc(f, now.AddDays(-2));
        Directory.SetLastWriteTimeUtc(reader, now.AddDays(-2));
        Assert.Equal(0, Exec(install));
        Assert.False(Directory.Exists(reader));
        Assert.False(Directory.Exists(namedDay), "the day of a pruned job's node-windows was not removed");
        Assert.True(Directory.Exists(unexported));
        Assert.True(Directory.Exists(staleFile));
        Assert.True(Directory.Exists(todays));
        Assert.Equal(1, Said());
    }

    /// <summary>
    /// A node sampler restarted before a UTC midnight reopens the day whose export by the sampler before it (its
    /// <c>finalize-job --node-day</c> child) finishes only now; a job's finalization runs before the new sampler's next
    /// flush. The day looks exported (its node file is newer than its spool) but the sampler has it open, with a
    /// period only in its buffer: it must stay, and its node file must end up with every record of the day.
    /// </summary>
    [Fact]
    public void ADayASamplerReopenedStaysWhileItIsOpenThoughAnEarlierExportOfItFinishedSince()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100");
        using var rig = new NodeRig();
        var cfg = rig.Config(storageMs: 1000);
        cfg.Paths.StateDir = install.Config.Paths.StateDir;
        cfg.Paths.DataDir = install.Config.Paths.DataDir;
        cfg.Paths.Database = install.Config.Paths.Database;
        const long Ms = 1_000_000;
        long wall0 = 20_000L * 86_400_000 * Ms - 60_000 * Ms; // 2024-10-03T23:59:00Z
        rig.SetCounters(0, 0, 0);
        rig.Proc.SetStat(0, 0);
        var node = rig.NewNode(cfg); // no job: a job's state dir would be recovered by the node sampler exec starts
        void Period(int s)
        {
            rig.SetCounters((ulong)s * 1_000_000, (ulong)s * 600_000, (ulong)s * 100_000);
            node.Snapshot(s * 1000 * Ms, wall0 + s * 1000 * Ms);
        }
        Period(1);
        Period(2);
        node.Flush();
        string day = Path.Combine(NodeSpool.Root(cfg), "2024-10-03");
        Assert.Equal(12, NodeReadWindows.RecordsIn(day)); // 2 periods × 3 counters × (node, unattributed)
        Exported(install, day); // the export of the sampler before it finishes now
        Period(3);              // in the sampler's buffer only

        Assert.Equal(0, Exec(install));
        Assert.True(Directory.Exists(day), "a job's finalization removed the day a sampler has open");

        node.Close(4000 * Ms, wall0 + 4000 * Ms);
        node.Dispose();
        Assert.Equal(24, NodeReadWindows.RecordsIn(day)); // and the closing period's
        string file = NodeSpool.ParquetPath(cfg, "local", Environment.MachineName, "2024-10-03");
        Assert.Equal(24L, Convert.ToInt64(ExecBinaryTests.Scalar($"SELECT count(*) FROM read_parquet('{file}')")));
        Assert.Equal(0, Exec(install)); // closed and exported whole: removed now
        Assert.False(Directory.Exists(day));
    }

    /// <summary>
    /// A closed day whose export fails (its cluster's directory is a file) is exported again by every node sampler that
    /// starts, said once in the log however many attempts fail; once the cause is gone the next sampler exports it, and
    /// the next job's finalization removes it.
    /// </summary>
    [Fact]
    public void AClosedDayWhoseExportFailedIsExportedAgainByTheNodeSamplerThenRemovedSaidOnce()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nlinger_s = 1");
        var now = DateTime.UtcNow;
        string day = NodeDay(install.Config, DateOnly.FromDateTime(now).AddDays(-2), now.AddDays(-2), Blocked);
        string blocked = Path.Combine(install.Config.Paths.DataDir, Blocked);
        Directory.CreateDirectory(install.Config.Paths.DataDir);
        File.WriteAllText(blocked, "not a directory");
        string log = install.PathOf("alumet-hpc.log");
        string failed = $"node file of {day}: export failed: ";
        // The sampler lets go of its pid file before its closed days' exports end (678edb5): wait for the processes too.
        void SamplerRun()
        {
            Assert.Equal(0, Exec(install));
            WaitForTheSamplersExit(install);
        }

        SamplerRun();
        Assert.Single(File.ReadAllLines(log), l => l.Contains(failed, StringComparison.Ordinal));
        Assert.Single(File.ReadAllLines(Path.Combine(day, "export-failed")));
        SamplerRun();
        Assert.Equal(2, File.ReadAllLines(Path.Combine(day, "export-failed")).Length); // tried again, not said again
        Assert.Single(File.ReadAllLines(log), l => l.Contains(failed, StringComparison.Ordinal));
        Assert.True(Directory.Exists(day));

        File.Delete(blocked);
        SamplerRun();
        string file = NodeSpool.ParquetPath(install.Config, Blocked, "n1", Path.GetFileName(day));
        Assert.Equal(2L, Convert.ToInt64(ExecBinaryTests.Scalar($"SELECT count(*) FROM read_parquet('{file}')")));
        Assert.Single(File.ReadAllLines(log), l => l.EndsWith($"node file {file}: written from {day} after 2 failed attempt(s)", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(day, "export-failed")));
        SamplerRun();
        Assert.False(Directory.Exists(day), "an exported day's spool was not removed by the next finalization");
        Assert.Single(File.ReadAllLines(log), l => l.Contains(failed, StringComparison.Ordinal));
    }

    /// <summary>
    /// A closed day whose lock another process holds (the closing sampler's export of its day, just after UTC midnight,
    /// at raw storage minutes long; here the test holds it) is left to that process by a new node sampler's start-up
    /// export: no wait, no "export failed"; once the lock is free the next sampler exports it. Fails on fa7e503: the new
    /// sampler's export waited 60 s for the lock, then logged "node file of DAY: export failed: another process held DAY
    /// for 60 s" (and the sampler stayed until then).
    /// </summary>
    [Fact]
    public void AClosedDayWhoseLockIsHeldIsLeftToItsHolderByANewSamplersStartUp()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nlinger_s = 1");
        var now = DateTime.UtcNow;
        string day = NodeDay(install.Config, DateOnly.FromDateTime(now).AddDays(-2), now.AddDays(-2));
        string log = install.PathOf("alumet-hpc.log");
        using (var held = FinalizationLock.Acquire(day, TimeSpan.Zero, out _))
        {
            Assert.NotNull(held);
            Assert.Equal(0, Exec(install));
            // Generous: on fa7e503 the sampler stays for its start-up export, which waits 60 s for the lock.
            ExecBinaryTests.WaitFor(() => !File.Exists(Path.Combine(NodeSpool.Root(install.Config), SamplerFiles.Pid)) && !install.Processes().Any(),
                "the node sampler's exit after its linger", 120);
        }
        Assert.DoesNotContain(File.ReadAllLines(log), l => l.Contains($"node file of {day}: export failed: ", StringComparison.Ordinal));
        Assert.False(File.Exists(Path.Combine(day, NodeSpool.ExportFailedFile)));
        Assert.Null(NodeSpool.ExportedTo(day));

        Assert.Equal(0, Exec(install));
        WaitForTheSamplersExit(install);
        string file = NodeSpool.ParquetPath(install.Config, "c1", "n1", Path.GetFileName(day)); // its spool may be pruned by now
        Assert.Equal(2L, Convert.ToInt64(ExecBinaryTests.Scalar($"SELECT count(*) FROM read_parquet('{file}')")));
        Assert.DoesNotContain(File.ReadAllLines(log), l => l.Contains("export failed", StringComparison.Ordinal));
    }

    /// <summary>
    /// Job <paramref name="jobId"/> of <paramref name="install"/>, exclusive, through the prolog's registration: its first
    /// records, then the package counter <paramref name="energyUj"/> past <paramref name="counterBeforeUj"/> (where the
    /// jobs before left it), in its spool; then its end, whose row cannot be
    /// made durable (a file where the node's outbox directory goes): the node sampler's finalization and the epilog's own
    /// attempt from the spool both fail, and the spool is kept. Returns that outbox path (delete it: room again).
    /// </summary>
    private static string EndWithoutRoomForTheRow(TestInstallation install, string jobId, long energyUj, long counterBeforeUj = 0)
    {
        string state = Registered(install, jobId);
        install.Powercap.SetEnergy("intel-rapl:0", (ulong)(counterBeforeUj + energyUj));
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, $"job:{jobId}", "cpu_package").Sum(r => r.Value) == energyUj, $"the job's {energyUj} µJ in its spool");
        string outbox = Path.Combine(install.Config.Paths.StateDir, Outbox.DirectoryName);
        File.WriteAllText(outbox, "not a directory");
        var epilog = StartEpilog(install, jobId);
        Assert.True(epilog.WaitForExit(60_000));
        Assert.Equal(0, epilog.ExitCode);
        var log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        Assert.Single(log, l => l.Contains($"slurm epilog job {jobId} on node1: error: job {jobId}: stop/finalize failed: ") && l.Contains(outbox));
        Assert.True(File.Exists(Path.Combine(state, SpoolWriter.RecordsFile)), "no row: the spool is kept");
        Assert.Null(JobFinalizer.FinalizedLine(state));
        return outbox;
    }

    /// <summary>Job <paramref name="jobId"/>, exclusive, registered by the prolog's call (starting a node sampler when none
    /// runs), once its first records are flushed: its state dir.</summary>
    private static string Registered(TestInstallation install, string jobId)
    {
        var job = new JobIdentity("slurm", "test", jobId, "root", 0, "node1");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
        Assert.True(launched.Ok, launched.Message);
        string state = job.StateDirectory(install.Config.Paths.StateDir);
        ExecBinaryTests.WaitFor(() => SpoolRecords(state) > 0, $"job {jobId}'s first flushed records");
        return state;
    }

    [Fact]
    public void AFailedFinalizationKeepsTheStateAndTheNextEpilogFinishesIt()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100");
        string state = new JobIdentity("slurm", "test", "302", "root", 0, "node1").StateDirectory(install.Config.Paths.StateDir);
        string outbox = EndWithoutRoomForTheRow(install, "302", 2_000_000);
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

    /// <summary>
    /// The job's Parquet file is on disk under its name before its spool, the only other copy, is removed: the dataset
    /// directory is synced after the rename, as the node's file is (data_dir is often another filesystem than state_dir,
    /// with no order between them at a power loss). Seen in the system calls of the finalization the node sampler runs
    /// (<c>alumet-hpc finalize-job</c>, under strace). Fails on 0180333: no fsync of the directory after the rename.
    /// </summary>
    [SkippableFact]
    public void AJobsParquetFileIsDurableInItsDirectoryBeforeItsSpoolIsRemoved()
    {
        Skip.If(!File.Exists("/usr/bin/strace"), "needs strace");
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100");
        string state = new JobIdentity("slurm", "test", "307", "root", 0, "node1").StateDirectory(install.Config.Paths.StateDir);
        File.Delete(EndWithoutRoomForTheRow(install, "307", 2_000_000)); // a kept spool, room again

        string trace = install.PathOf("finalize.strace");
        var psi = new ProcessStartInfo("/usr/bin/strace", ["-f", "-s", "4096", "-o", trace, "-e", "trace=rename,renameat,renameat2,openat,fsync,unlink,unlinkat",
            TestInstallation.Binary(), "finalize-job", "--config", install.ConfigPath, "--state-dir", state, "--complete", "false"])
            { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using (var p = Process.Start(psi)!)
        {
            p.StandardInput.Write("finalized by hand");
            p.StandardInput.Close();
            string answer = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, answer + p.StandardError.ReadToEnd());
        }
        Assert.False(Directory.Exists(state));
        string parquet;
        using (var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database)) parquet = Assert.Single(db.GetJob("307")).ParquetPath;
        var calls = File.ReadAllLines(trace);
        int renamed = Array.FindIndex(calls, l => l.Contains(" rename", StringComparison.Ordinal) && l.Contains($"\"{parquet}\"", StringComparison.Ordinal));
        int removed = Array.FindIndex(calls, l => l.Contains(" unlink", StringComparison.Ordinal) && l.Contains($"\"{Path.Combine(state, SpoolWriter.RecordsFile)}\"", StringComparison.Ordinal));
        Assert.True(renamed >= 0 && removed > renamed, $"the file's rename (line {renamed}) before the spool's removal (line {removed})");
        var opened = new Regex($"openat\\(AT_FDCWD, \"{Regex.Escape(Path.GetDirectoryName(parquet)!)}\", O_RDONLY\\|O_DIRECTORY[^)]*\\)\\s+= (\\d+)$");
        bool synced = false;
        for (int i = renamed + 1; i < removed && !synced; i++)
            if (opened.Match(calls[i]) is { Success: true } m)
                synced = calls[(i + 1)..removed].Any(l => Regex.IsMatch(l, $@" fsync\({m.Groups[1].Value}\)\s+= 0$")); // strace pads before "="
        Assert.True(synced, $"{Path.GetDirectoryName(parquet)} was not synced between the rename of {parquet} and the removal of the spool");
    }

    /// <summary>The node sampler's exit: its pid file gone (with the node lock, once its spools are closed: the next prolog
    /// starts a new one from then), then its process and its finalize-job children (its closed day's export, its retries).</summary>
    internal static void WaitForTheSamplersExit(TestInstallation install) =>
        ExecBinaryTests.WaitFor(() => !File.Exists(Path.Combine(NodeSpool.Root(install.Config), SamplerFiles.Pid)) && !install.Processes().Any(),
            "the node sampler's exit after its linger, and its day's export");

    /// <summary>The rows of every run of <paramref name="jobId"/>, by run id (their start); waits up to 30 s for <paramref name="count"/>.</summary>
    internal static List<JobRecord> Runs(TestInstallation install, string jobId, int count)
    {
        var end = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            List<JobRecord> runs = [];
            if (File.Exists(install.Config.Paths.Database))
                using (var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database))
                    runs = [.. db.GetJob(jobId, runs: RunSelection.All).OrderBy(r => r.RunId, StringComparer.Ordinal)];
            if (runs.Count >= count || DateTime.UtcNow > end) return runs;
            Thread.Sleep(100);
        }
    }

    /// <summary>
    /// A job whose finalization failed at its end has ended (its epilog ran): a node sampler started after that (by the
    /// next job's prolog) never takes it back as a running job, and the next job's end finalizes it from its kept spool,
    /// said once. Fails on 0180333: the new sampler recovered the ended job, and, registered first and exclusive, it was
    /// charged the whole node: the next job's row had 0 J (and the ended job would have been sampled until
    /// max_lifetime_h, 14 days, with no row).
    /// </summary>
    [Fact]
    public void ASamplerStartedAfterAFailedFinalizationNeverSamplesTheEndedJobAndTheNextJobsEndFinalizesIt()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nlinger_s = 0");
        string ended = new JobIdentity("slurm", "test", "304", "root", 0, "node1").StateDirectory(install.Config.Paths.StateDir);
        File.Delete(EndWithoutRoomForTheRow(install, "304", 2_000_000)); // room again
        WaitForTheSamplersExit(install);

        string state = Registered(install, "305"); // by a node sampler this prolog starts
        install.Powercap.SetEnergy("intel-rapl:0", 5_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "node", "cpu_package").Sum(r => r.Value) == 3_000_000, "the node's 3 J in the next job's spool");
        var epilog = StartEpilog(install, "305");
        Assert.True(epilog.WaitForExit(60_000));
        Assert.Equal(0, epilog.ExitCode);

        var row = Assert.Single(Runs(install, "305", 1));
        Assert.Equal((JobStatus.Complete, 3.0), (row.Status, Math.Round(row.Energy.PackageJ, 9)));
        var first = Assert.Single(Runs(install, "304", 1));
        Assert.Equal((JobStatus.Partial, 2.0), (first.Status, Math.Round(first.Energy.PackageJ, 9)));
        Assert.StartsWith("its finalization at the job's end failed (", first.Reason);
        Assert.EndsWith("); finalized from its kept spool when a later job on this node ended", first.Reason);
        ExecBinaryTests.WaitFor(() => !Directory.Exists(ended), "the ended job's state dir removed once finalized");
        // The retry logs once it has concluded (after the state dir's removal), as every finalization does: wait for it.
        const string retried = " info: job 304: finalized partial from its kept spool (";
        ExecBinaryTests.WaitFor(() => File.ReadAllLines(install.PathOf("alumet-hpc.log")).Any(l => l.Contains(retried, StringComparison.Ordinal)), "the retry's log line");
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.Contains(retried, StringComparison.Ordinal));
    }

    /// <summary>
    /// A reused job id (a Slurm requeue) never replaces an earlier run whose finalization failed: its spool, the only copy
    /// of that run (no row), is moved aside when the id registers again, and the new run's end finalizes it, each run
    /// with its own row. Fails on 0180333: the registration deleted the earlier run's spool (one row, the new run's, whose
    /// reason even said that the earlier run's finalization failed).
    /// </summary>
    [Fact]
    public void ARequeuedJobIdKeepsTheEarlierRunsSpoolWhoseFinalizationFailed()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100");
        File.Delete(EndWithoutRoomForTheRow(install, "306", 2_000_000)); // room again

        string state = Registered(install, "306"); // the same id again: a requeue
        EndAt(install, state, "306", 5_000_000, 3_000_000);

        var runs = Runs(install, "306", 2);
        Assert.Equal([(JobStatus.Partial, 2.0), (JobStatus.Complete, 3.0)], runs.Select(r => (r.Status, Math.Round(r.Energy.PackageJ, 9))));
        Assert.StartsWith("its finalization at the job's end failed (", runs[0].Reason);
        Assert.Equal("", runs[1].Reason);
        string jobs = Path.GetDirectoryName(state)!;
        ExecBinaryTests.WaitFor(() => Directory.GetDirectories(jobs).Length == 0, "both runs' state dirs removed once finalized");
        // The earlier run's marker stays beside the later run's: a late epilog of that run is answered from it.
        Assert.Equal(["306.finalized", $"306.run-{runs[0].RunId}.finalized"], Directory.GetFiles(jobs).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>Job <paramref name="jobId"/> (state dir <paramref name="state"/>) ended by its epilog once the package counter,
    /// moved to <paramref name="counterUj"/>, is in its spool: its share, <paramref name="shareUj"/> µJ.</summary>
    private static void EndAt(TestInstallation install, string state, string jobId, ulong counterUj, long shareUj)
    {
        install.Powercap.SetEnergy("intel-rapl:0", counterUj);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, $"job:{jobId}", "cpu_package").Sum(r => r.Value) == shareUj, $"job {jobId}'s {shareUj} µJ in its spool");
        var epilog = StartEpilog(install, jobId);
        Assert.True(epilog.WaitForExit(60_000));
        Assert.Equal(0, epilog.ExitCode);
    }

    /// <summary>Every file and directory under <paramref name="dir"/> (and it) last written <paramref name="when"/>.</summary>
    private static void Age(string dir, DateTime when)
    {
        foreach (string f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)) File.SetLastWriteTimeUtc(f, when);
        foreach (string d in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories)) Directory.SetLastWriteTimeUtc(d, when);
        Directory.SetLastWriteTimeUtc(dir, when);
    }

    /// <summary>
    /// An earlier run's state dir that a requeue moved aside (<c>&lt;job&gt;.run-&lt;run id&gt;</c>) and that stays once
    /// finalized (here keep_state = "always") is removed by age as the in-place dir of the run after it is. Fails on
    /// 73cb532: the aside dir stayed whatever its age (pruning took job-id names only).
    /// </summary>
    [Fact]
    public void AnEarlierRunsStateMovedAsideIsRemovedByAgeAsTheInPlaceOneIs()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nkeep_state = \"always\"\nstate_max_age_h = 24");
        File.Delete(EndWithoutRoomForTheRow(install, "308", 2_000_000)); // room again
        string state = Registered(install, "308"); // the same id again: run 1 is moved aside
        string slurm = Path.GetDirectoryName(state)!;
        string aside = Assert.Single(Directory.GetDirectories(slurm), d => d != state);
        EndAt(install, state, "308", 5_000_000, 3_000_000);
        Assert.Equal([(JobStatus.Partial, 2.0), (JobStatus.Complete, 3.0)], Runs(install, "308", 2).Select(r => (r.Status, Math.Round(r.Energy.PackageJ, 9))));
        ExecBinaryTests.WaitFor(() => JobFinalizer.FinalizedLine(aside) is not null, "the earlier run finalized aside (kept: keep_state = \"always\")");
        Assert.Equal([state, aside], Directory.GetDirectories(slurm).OrderBy(d => d != state));

        Age(slurm, DateTime.UtcNow.AddDays(-2));
        Assert.Equal(0, Exec(install)); // a later job's finalization prunes

        Assert.Equal([], Directory.GetFileSystemEntries(slurm).Select(Path.GetFileName));
    }

    /// <summary>
    /// A state dir whose spool is the only copy of a job's data — its finalization failed (no row), or its Parquet export
    /// is pending — is never removed by age, in place or moved aside by a requeue: said once each, and finalized once a
    /// later job's end finds room. Fails on 73cb532: the in-place one whose finalization failed was removed at
    /// state_max_age_h (job 310 never got a row), the aside one kept without a word.
    /// </summary>
    [Fact]
    public void AStateWhoseFinalizationFailedIsNeverRemovedByAgeInPlaceOrAsideAndSaidOnce()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstate_max_age_h = 24");
        string outbox = EndWithoutRoomForTheRow(install, "309", 2_000_000);
        string failed = new JobIdentity("slurm", "test", "310", "root", 0, "node1").StateDirectory(install.Config.Paths.StateDir);
        Assert.Equal(outbox, EndWithoutRoomForTheRow(install, "310", 3_000_000, counterBeforeUj: 2_000_000)); // still no room
        string state = Registered(install, "309"); // the same id again: run 1 is moved aside
        string slurm = Path.GetDirectoryName(state)!;
        string aside = Assert.Single(Directory.GetDirectories(slurm), d => d != state && d != failed);
        Age(aside, DateTime.UtcNow.AddDays(-2));
        Age(failed, DateTime.UtcNow.AddDays(-2));

        File.Delete(outbox); // room again: run 2's end succeeds, prunes, then retries the kept ones
        EndAt(install, state, "309", 9_000_000, 4_000_000);

        Assert.Equal([(JobStatus.Partial, 2.0), (JobStatus.Complete, 4.0)], Runs(install, "309", 2).Select(r => (r.Status, Math.Round(r.Energy.PackageJ, 9))));
        Assert.Equal([(JobStatus.Partial, 3.0)], Runs(install, "310", 1).Select(r => (r.Status, Math.Round(r.Energy.PackageJ, 9))));
        var log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        foreach (string dir in new[] { aside, failed })
        {
            string warning = $"job state {dir} is kept: it is older than state_max_age_h and the job has no row yet (its spool is the only copy; a later job's end on this node finalizes it)";
            Assert.Single(log, l => l.EndsWith(warning, StringComparison.Ordinal));
        }
    }
}
