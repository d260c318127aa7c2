using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>
/// A node sampler hung (SIGSTOP) while its job ends: the epilog gives up after stop_timeout_s and finalizes the job
/// from its spool (SamplerLauncher.StopAndFinalize, README "Data: spool, Parquet, database"). When the sampler resumes
/// (SIGCONT) it goes on where it stopped — reads, a snapshot, a flush — before its housekeeping sees the finalized
/// marker, and it may also answer the epilog's "end" request still queued on its socket. Through the real entry points:
/// the tick's reads, Snapshot, Flush, End, Housekeep, and the epilog's StopAndFinalize.
/// </summary>
public sealed class HungSamplerResumeTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Wall0 = 1_700_000_000_000 * Ms;
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static string JobDir(AlumetConfig cfg) => NodeRig.Job("42").Job.StateDirectory(cfg.Paths.StateDir);

    /// <summary>
    /// Job 42 alone and exclusive at raw storage, 1 W of package: a period split at 1 s, 200 ms of reads written by the
    /// 300 ms flush, then the sampler stops; the epilog finalizes the job (its unsplit reads closed as unattributed).
    /// </summary>
    private NodeSampler HungThenFinalizedByTheEpilog(string keepState, out AlumetConfig cfg)
    {
        var node = _rig.RawNodeWithJob42(Wall0, out cfg, exclusive: true, flushIntervalMs: 300);
        cfg.Sampler.KeepState = keepState;
        for (long t = 1; t <= 1200; t++) Read(node, t);
        var stop = SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg); // nothing answers: finalized from the spool
        Assert.Equal(JobStatus.Partial, stop.Status);
        return node;
    }

    private void Read(NodeSampler node, long t)
    {
        _rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
        Assert.True(node.Buffer.Read(_rig.Slot!, t * Ms, Wall0 + t * Ms));
        if (t % 1000 == 0) node.Snapshot(t * Ms, Wall0 + t * Ms);
        if (t % 300 == 0) node.Flush(); // the sampler's flush every flush_interval_ms
    }

    /// <summary>SIGCONT at 1.5 s: 300 ms of reads, the period's snapshot and a flush, then the queued "end" request and
    /// the housekeeping, in either order (two threads of the sampler). Job 42 is dropped; <paramref name="others"/> jobs stay.</summary>
    private static JobFinalizer.Outcome? Resume(NodeSampler node, NodeRig rig, bool endRequestFirst, int others = 0)
    {
        ResumedReads(node, rig);
        JobFinalizer.Outcome? end = null;
        if (endRequestFirst) end = node.End(NodeRig.Job("42").Key, true, "", 1500 * Ms, Wall0 + 1500 * Ms);
        node.Housekeep(1500 * Ms);
        if (!endRequestFirst) end = node.End(NodeRig.Job("42").Key, true, "", 1500 * Ms, Wall0 + 1500 * Ms);
        Assert.Equal(others, node.JobCount);
        node.Close(1500 * Ms, Wall0 + 1500 * Ms);
        return end;
    }

    /// <summary>What the resumed sampler does first: 300 ms of reads, the period's snapshot at 1.5 s and a flush.</summary>
    private static void ResumedReads(NodeSampler node, NodeRig rig)
    {
        for (long t = 1201; t <= 1500; t++)
        {
            rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
            Assert.True(node.Buffer.Read(rig.Slot!, t * Ms, Wall0 + t * Ms));
        }
        node.Snapshot(1500 * Ms, Wall0 + 1500 * Ms);
        node.Flush();
    }

    /// <summary>
    /// The epilog finalizes the job (StopAndFinalize, nothing answers) while the sampler resumes: the moment is the
    /// finalizer's read of the node's calibration model (JobFinalizer: after JobSummary.FromSpool, before
    /// ParquetExporter), made a FIFO here, in which the finalizer waits until <paramref name="atThatMoment"/> and the
    /// resumed sampler's <see cref="ResumedReads"/> are done and the FIFO's other end is closed. Returns the epilog's status.
    /// </summary>
    private string FinalizedWhileItResumes(NodeSampler node, AlumetConfig cfg, Action? atThatMoment = null)
    {
        cfg.Calibration.Dir = _rig.Install.PathOf("calibration");
        Directory.CreateDirectory(cfg.Calibration.Dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string model = Alumet.Hpc.Calibration.WallModel.PathFor(cfg.Calibration.Dir, "node1");
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", ["-m", "600", model])) mkfifo.WaitForExit();
        var resumed = Task.Run(() =>
        {
            using var fifo = new FileStream(model, FileMode.Open, FileAccess.Write); // opens once the finalizer reads the model
            atThatMoment?.Invoke();
            ResumedReads(node, _rig);
        });

        var stop = SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg);

        if (!resumed.Wait(TimeSpan.FromSeconds(30)))
        {
            using (new FileStream(model, FileMode.Open, FileAccess.Read)) { } // lets the resumed thread go
            Assert.Fail("the finalization never read the node's calibration model");
        }
        resumed.GetAwaiter().GetResult();
        return stop.Status;
    }

    private static JobRecord Row(AlumetConfig cfg)
    {
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        return Assert.Single(db.GetJob("42"));
    }

    /// <summary>
    /// At the defaults (keep_state = "failed") the epilog removed the state dir: the resumed sampler's writes go to the
    /// spool file it still holds open, unlinked; its "end" is answered "already finalized" from the marker; the job's
    /// Parquet file, its row and its marker stay as the epilog wrote them, and no state dir comes back.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AtTheDefaultsAResumedSamplerChangesNothingTheEpilogRecorded(bool endRequestFirst)
    {
        using var node = HungThenFinalizedByTheEpilog("failed", out var cfg);
        var row = Row(cfg);
        byte[] parquet = File.ReadAllBytes(row.ParquetPath);
        string marker = File.ReadAllText(JobFinalizer.MarkerPath(JobDir(cfg)));
        Assert.False(Directory.Exists(JobDir(cfg)));

        var end = Resume(node, _rig, endRequestFirst);

        if (endRequestFirst) Assert.Equal(JobFinalizer.AlreadyStatus, end!.Status);
        else Assert.Null(end); // dropped by the housekeeping: no longer registered
        var after = Row(cfg);
        Assert.Equal((row.Status, row.Reason, row.Energy.PackageJ, row.ParquetPath, row.RunId), (after.Status, after.Reason, after.Energy.PackageJ, after.ParquetPath, after.RunId));
        Assert.Equal(1.0, after.Energy.PackageJ, 12);
        Assert.Equal(parquet, File.ReadAllBytes(row.ParquetPath));
        Assert.Equal(marker, File.ReadAllText(JobFinalizer.MarkerPath(JobDir(cfg))));
        Assert.False(Directory.Exists(JobDir(cfg)));
    }

    /// <summary>
    /// A kept state dir (keep_state = "always"; also a failed Parquet export, whose spool README says to export by hand)
    /// should hold the spool the epilog finalized: its row and its file were made from it.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AResumedSamplerLeavesAKeptStateDirAsTheEpilogFinalizedIt(bool endRequestFirst)
    {
        using var node = HungThenFinalizedByTheEpilog("always", out var cfg);
        var row = Row(cfg);
        byte[] parquet = File.ReadAllBytes(row.ParquetPath);
        string records = Path.Combine(JobDir(cfg), SpoolWriter.RecordsFile);
        byte[] spool = File.ReadAllBytes(records);
        Assert.Equal(3 * (1200 + 2 + 1) * SpoolRecord.Size, spool.Length); // reads, the split, the epilog's closing record

        var end = Resume(node, _rig, endRequestFirst);

        if (endRequestFirst) Assert.Equal(JobFinalizer.AlreadyStatus, end!.Status);
        var after = Row(cfg);
        Assert.Equal((row.Status, row.Reason, row.Energy.PackageJ), (after.Status, after.Reason, after.Energy.PackageJ));
        Assert.Equal(parquet, File.ReadAllBytes(row.ParquetPath));
        byte[] kept = File.ReadAllBytes(records);
        int closing = spool.Length - 3 * SpoolRecord.Size;
        var again = Alumet.Hpc.Outputs.JobSummary.FromSpool(JobDir(cfg), Alumet.Hpc.Outputs.SummaryOptions.FromConfig(cfg));
        Assert.True(spool.AsSpan().SequenceEqual(kept),
            $"the kept spool changed after the finalization: {spool.Length} bytes, now {kept.Length}; the epilog's closing records at byte {closing} "
            + (kept.AsSpan(closing, 3 * SpoolRecord.Size).SequenceEqual(spool.AsSpan(closing)) ? "kept" : "overwritten")
            + $"; the job's package energy from it is now {again.Job.Energy.PackageJ} J, the row's {after.Energy.PackageJ} J");
    }

    /// <summary>
    /// A kept state dir is what the epilog finalized, meta.json included: the resumed sampler rewrites meta.json by path
    /// (temporary file + rename) when its job's series change — here the job's first step (its cgroup step_0) is seen
    /// at the resumed period's split, a series of its own. The job is dropped all the same, and nothing in its
    /// directory changes.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AResumedSamplerWritesNothingMoreIntoAKeptStateDir(bool endRequestFirst)
    {
        using var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: false, flushIntervalMs: 300);
        cfg.Sampler.KeepState = "always";
        for (long t = 1; t <= 1200; t++) Read(node, t);
        Assert.Equal(JobStatus.Partial, SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg).Status);
        var kept = Files(JobDir(cfg));
        Assert.Contains(SpoolWriter.MetaFile, kept.Keys);

        _rig.SetJobCpu("42", 1_000_000_000);
        _rig.Cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42/step_0", 1_000_000_000);
        var end = Resume(node, _rig, endRequestFirst);

        if (endRequestFirst) Assert.Equal(JobFinalizer.AlreadyStatus, end!.Status);
        var now = Files(JobDir(cfg));
        string changed = string.Join(", ", now.Keys.Union(kept.Keys).Order(StringComparer.Ordinal)
            .Where(f => !(kept.TryGetValue(f, out var a) && now.TryGetValue(f, out var b) && a.AsSpan().SequenceEqual(b)))
            .Select(f => !kept.ContainsKey(f) ? $"{f} added" : !now.ContainsKey(f) ? $"{f} removed" : $"{f} rewritten"));
        Assert.True(changed.Length == 0, $"the kept state dir changed after the finalization: {changed}; its series were {Series(kept)}, now {Series(now)}");
    }

    /// <summary>
    /// The same while the epilog finalizes (a stall that ends just after stop_timeout_s): the sampler resumes once the
    /// epilog has made the row (<see cref="FinalizedWhileItResumes"/>), its
    /// job's first step appears, it flushes; the kept state dir is the one the row was made from, and once the epilog has
    /// written its marker the sampler drops the job.
    /// </summary>
    [Fact]
    public void ASamplerThatResumesDuringTheEpilogsFinalizationWritesNothingMoreIntoAKeptStateDir()
    {
        using var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: false, flushIntervalMs: 300);
        cfg.Sampler.KeepState = "always";
        for (long t = 1; t <= 1200; t++) Read(node, t);
        Dictionary<string, byte[]>? summarized = null;
        Assert.Equal(JobStatus.Partial, FinalizedWhileItResumes(node, cfg, () =>
        {
            summarized = Files(JobDir(cfg), SpoolWriter.MetaFile, SpoolWriter.RecordsFile); // its lock is held: not read
            _rig.SetJobCpu("42", 1_000_000_000);
            _rig.Cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42/step_0", 1_000_000_000);
        }));
        var kept = Files(JobDir(cfg), SpoolWriter.MetaFile, SpoolWriter.RecordsFile);
        Assert.True(summarized![SpoolWriter.MetaFile].AsSpan().SequenceEqual(kept[SpoolWriter.MetaFile]),
            $"meta.json changed after the row was made from it: its series were {Series(summarized)}, now {Series(kept)}");
        Assert.True(summarized[SpoolWriter.RecordsFile].AsSpan().SequenceEqual(kept[SpoolWriter.RecordsFile]), "spool.bin changed after the row was made from it");
        node.Housekeep(1500 * Ms);
        Assert.Equal(0, node.JobCount);
    }

    /// <summary>The consumers of the series a state dir's meta.json lists, with their counts.</summary>
    private static string Series(Dictionary<string, byte[]> files) =>
        !files.TryGetValue(SpoolWriter.MetaFile, out var meta) ? "none" : string.Join(" ",
            System.Text.Json.JsonSerializer.Deserialize(meta, SpoolJsonContext.Default.SpoolMeta)!.Series
                .GroupBy(x => x.Consumer).Select(g => $"{g.Key}×{g.Count()}"));

    /// <summary>The files of <paramref name="dir"/> (all, or those <paramref name="only"/> names) and their bytes.</summary>
    private static Dictionary<string, byte[]> Files(string dir, params string[] only) =>
        Directory.GetFiles(dir).Where(f => only.Length == 0 || only.Contains(Path.GetFileName(f))).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    /// <summary>
    /// The sampler resumes while the epilog finalizes (a stall that ends just after stop_timeout_s; at the defaults):
    /// its reads, snapshot and flush land between the summary the row is made from and the Parquet export. The row and
    /// the file must hold the same energy, and the file must conserve. The moment is the finalizer's read of the node's
    /// calibration model (JobFinalizer: after JobSummary.FromSpool, before ParquetExporter), made a FIFO here: the
    /// finalizer waits in it until the resumed sampler has flushed and closed the FIFO's other end.
    /// </summary>
    [Fact]
    public void ASamplerThatResumesDuringTheEpilogsFinalizationChangesNeitherItsRowNorItsFile()
    {
        using var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: true, flushIntervalMs: 300);
        for (long t = 1; t <= 1200; t++) Read(node, t);
        Assert.Equal(JobStatus.Partial, FinalizedWhileItResumes(node, cfg));
        var row = Row(cfg);
        Assert.Equal(1.0, row.Energy.PackageJ, 12);
        long raw = 0;
        foreach (var g in Alumet.Hpc.Outputs.Parquet.ParquetRows.ReadAsync(row.ParquetPath, noFollow: true).ToBlockingEnumerable())
            for (int i = 0; i < g.Count; i++)
                if (g.Consumer[i] == SpoolSeries.JobConsumer("42") && g.ResourceKind[i] == "cpu_package") raw += g.EnergyRaw![i];
        Assert.True(row.Energy.PackageJ == raw * 1e-6, $"the row says {row.Energy.PackageJ} J of package, its Parquet file {raw * 1e-6} J");
        Conservation.AssertEveryInterval(row.ParquetPath, 2 * 3); // per counter: the period to 1 s, and the reads after it closed by the epilog
    }
}
