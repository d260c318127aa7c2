using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Sampling;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>
/// At raw storage the tick stores each read once, in the node's day spool; a job alone on the node (or exclusive) gets
/// the reads of its windows copied into its spool when it is finalized (NodeReadWindows, issue 8 item 5). Through the
/// real entry points (Register, the tick's reads, Snapshot, End, Close, the epilog's StopAndFinalize), with every read
/// known: 1 ms reads of 1 W package (1000 µJ), 0.6 W cores, 0.1 W DRAM.
/// </summary>
public sealed class NodeReadWindowsTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Wall0 = 1_700_000_000_000 * Ms; // 2023-11-14T22:13:20Z
    private const string Day0 = "2023-11-14";
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static string JobDir(AlumetConfig cfg, string id = "42") => NodeRig.Job(id).Job.StateDirectory(cfg.Paths.StateDir);

    private static string NodeDay(AlumetConfig cfg, string day) => Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory, day);

    /// <summary>A read at <paramref name="ms"/> ms of the counters' own time (wall = Wall0 + that).</summary>
    private void Read(NodeSampler node, long ms, long monoMs = -1)
    {
        _rig.SetCounters((ulong)ms * 1_000, (ulong)ms * 600, (ulong)ms * 100);
        Assert.True(node.Buffer.Read(_rig.Slot!, (monoMs < 0 ? ms : monoMs) * Ms, Wall0 + ms * Ms));
    }

    private static JobRecord Row(AlumetConfig cfg, string id = "42")
    {
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        return Assert.Single(db.GetJob(id));
    }

    /// <summary>The rows of one consumer of a Parquet file: (end µs, interval µs, domain, raw energy), in domain then time order.</summary>
    private static List<(long EndUs, long IntervalUs, string Domain, long Raw)> ParquetRows(string path, string consumer)
    {
        var rows = new List<(long, long, string, long)>();
        foreach (var g in Alumet.Hpc.Outputs.Parquet.ParquetRows.ReadAsync(path, noFollow: true).ToBlockingEnumerable())
            for (int i = 0; i < g.Count; i++)
                if (g.Consumer[i] == consumer) rows.Add((g.EndUs[i], g.IntervalUs[i], g.Domain(i), g.EnergyRaw![i]));
        return [.. rows.OrderBy(r => r.Item3, StringComparer.Ordinal).ThenBy(r => r.Item1)];
    }

    /// <summary>The node's reads in a day's spool file whose end falls in one of <paramref name="windows"/> (ms after Wall0, (from, to]), as Parquet rows.</summary>
    private static List<(long EndUs, long IntervalUs, string Domain, long Raw)> NodeSpoolReads(string dayDir, params (long From, long To)[] windows) =>
        [.. NodeSamplerTests.Rows(dayDir)
            .Where(x => x.Consumer == SpoolSeries.NodeConsumer && windows.Any(w => x.R.WallNs > Wall0 + w.From * Ms && x.R.WallNs <= Wall0 + w.To * Ms))
            .Select(x => (x.R.WallNs / 1000, x.R.IntervalNs / 1000, x.Resource, x.R.Value))
            .OrderBy(r => r.Resource, StringComparer.Ordinal).ThenBy(r => r.Item1)];

    /// <summary>The expected node rows: a 1 ms read at each of <paramref name="ms"/>, per counter.</summary>
    private static List<(long EndUs, long IntervalUs, string Domain, long Raw)> Reads(IEnumerable<long> ms, long intervalMs = 1) =>
        [.. new[] { ("cpu_cores:0", 600L), ("cpu_package:0", 1000L), ("dram:0", 100L) }
            .SelectMany(d => ms.Select(t => ((Wall0 + t * Ms) / 1000, intervalMs * 1000, d.Item1, d.Item2 * intervalMs)))];

    private static long Records(string dir) => new FileInfo(Path.Combine(dir, SpoolWriter.RecordsFile)).Length / SpoolRecord.Size;

    /// <summary>
    /// The tick writes nothing into the job's spool: 1000 reads of a lone raw job leave its spool.bin empty (the node's
    /// holds 3000 records); its meta.json already lists the node series its file will get, with the ids the tick's first
    /// read used to give them; its windows file says where the reads are.
    /// </summary>
    [Fact]
    public void TheTickStoresEachReadOnceInTheNodesSpool()
    {
        using var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: true);
        for (long t = 1; t <= 1000; t++) Read(node, t);
        node.Flush();

        Assert.Equal(0, Records(JobDir(cfg)));
        Assert.Equal(3000, Records(NodeDay(cfg, Day0)));
        Assert.Equal(["node", "node", "node"], SpoolWriter.ReadMeta(JobDir(cfg)).Series.Select(s => s.Consumer));
        Assert.Equal($"open - 0\nroll -1 {Day0} 0\n", File.ReadAllText(Path.Combine(JobDir(cfg), NodeReadWindows.FileName)));
        Assert.Equal(3000, node.RecordsWritten(NodeRig.Job("42").Key)); // what `sample`'s stats.json says: the file's rows so far
        node.Close(1000 * Ms, Wall0 + 1000 * Ms);
    }

    /// <summary>
    /// Job 42 alone for 10 ms, then with job 43 for 10 ms, then alone again for 10 ms: its file holds the node's reads
    /// of its two windows alone, exactly (60 rows), none of the 10 ms it shared the node; job 43's file none; job 42's
    /// file conserves in both of its split periods.
    /// </summary>
    [Fact]
    public void ASecondJobArrivingAndLeavingLeavesTheFirstTheReadsOfItsWindowsAloneOnly()
    {
        using var node = _rig.RawNodeWithJob42(Wall0, out var cfg);
        cfg.Sampler.KeepState = "always";
        _rig.SetJobCpu("43", 0);
        for (long t = 1; t <= 10; t++) Read(node, t);
        node.Register(NodeRig.Job("43"), false, 10 * Ms, Wall0 + 10 * Ms); // closes job 42's period alone
        for (long t = 11; t <= 20; t++) Read(node, t);
        Assert.Equal("complete", node.End(NodeRig.Job("43").Key, true, "", 20 * Ms, Wall0 + 20 * Ms)!.Status);
        for (long t = 21; t <= 30; t++) Read(node, t);
        var outcome = node.End(NodeRig.Job("42").Key, true, "", 30 * Ms, Wall0 + 30 * Ms)!;
        node.Close(30 * Ms, Wall0 + 30 * Ms);

        Assert.Equal("complete", outcome.Status);
        var expected = Reads(Enumerable.Range(1, 10).Concat(Enumerable.Range(21, 10)).Select(t => (long)t));
        Assert.Equal(expected, ParquetRows(outcome.ParquetPath, SpoolSeries.NodeConsumer));
        Assert.Equal(expected, NodeSpoolReads(NodeDay(cfg, Day0), (0, 10), (20, 30)));
        Assert.Empty(ParquetRows(Row(cfg, "43").ParquetPath, SpoolSeries.NodeConsumer));
        Conservation.AssertEveryInterval(outcome.ParquetPath, 2 * 3);
        // Node spool: 30 reads, then job 42's split (share, unattributed) at 10 ms: 36; 30 reads and the 3-part split
        // at 20 ms: 75; 30 reads and job 42's split at 30 ms: 111.
        Assert.Equal($"open - 0\nroll -1 {Day0} 0\nclose 36\nopen {Day0} 75\nclose 111\n",
            File.ReadAllText(Path.Combine(JobDir(cfg), NodeReadWindows.DoneFileName)));
        Assert.False(File.Exists(Path.Combine(JobDir(cfg), NodeReadWindows.FileName)));
    }

    /// <summary>
    /// A window across a UTC midnight: the node's spool rolls to the new day at the first snapshot after it; the job's
    /// file gets the reads of both days' spools (the days are set by the wall stamps the entry points take).
    /// </summary>
    [Fact]
    public void AWindowAcrossAUtcMidnightTakesItsReadsFromBothDays()
    {
        const long Day = 86_400_000 * Ms;
        long midnight = 20_000 * Day; // 2024-10-04T00:00:00Z
        long at(long ms) => midnight - 500 * Ms + ms * Ms;
        var node = _rig.RawNodeWithJob42(midnight - 500 * Ms, out var cfg, exclusive: true);
        cfg.Sampler.KeepState = "always";
        void ReadAt(long ms)
        {
            _rig.SetCounters((ulong)ms * 1_000, (ulong)ms * 600, (ulong)ms * 100);
            Assert.True(node.Buffer.Read(_rig.Slot!, ms * Ms, at(ms)));
        }
        for (long ms = 100; ms <= 400; ms += 100) ReadAt(ms);
        node.Snapshot(400 * Ms, at(400));
        for (long ms = 500; ms <= 700; ms += 100) ReadAt(ms); // from midnight on, into the old day's spool until the snapshot rolls it
        node.Snapshot(700 * Ms, at(700));
        // The closed day as the tick wrote it: once exported and copied into the job's spool, the job's finalization
        // removes it (JobStateCleanup: a day no job's node-windows names).
        var day1 = NodeSamplerTests.Rows(NodeDay(cfg, "2024-10-03")).ToList();
        for (long ms = 800; ms <= 900; ms += 100) ReadAt(ms);
        var outcome = node.End(NodeRig.Job("42").Key, true, "", 900 * Ms, at(900))!;
        node.Close(900 * Ms, at(900));
        node.Dispose();

        Assert.Equal("complete", outcome.Status);
        var rows = ParquetRows(outcome.ParquetPath, SpoolSeries.NodeConsumer);
        Assert.Equal(27, rows.Count); // 9 reads × 3 counters
        Assert.All(rows, r => Assert.Equal(100_000, r.IntervalUs));
        Assert.Equal(Enumerable.Range(1, 9).Select(k => at(k * 100) / 1000), rows.Where(r => r.Domain == "dram:0").Select(r => r.EndUs));
        Assert.Equal(900 * 100, rows.Where(r => r.Domain == "dram:0").Sum(r => r.Raw));
        var days = new[] { "2024-10-03", "2024-10-04" };
        var fromSpools = day1.Concat(NodeSamplerTests.Rows(NodeDay(cfg, days[1]))).Where(x => x.Consumer == SpoolSeries.NodeConsumer)
            .Select(x => (x.R.WallNs / 1000, x.R.IntervalNs / 1000, x.Resource, x.R.Value)).OrderBy(x => x.Resource, StringComparer.Ordinal).ThenBy(x => x.Item1);
        Assert.Equal(fromSpools, rows);
        // Day 1: 7 reads and two splits (3 × 7 + 2 × 6 = 33); day 2 from its start: 2 reads and the last split (12).
        Assert.Equal($"open - 0\nroll -1 {days[0]} 0\nroll 33 {days[1]} 0\nclose 12\n",
            File.ReadAllText(Path.Combine(JobDir(cfg), NodeReadWindows.DoneFileName)));
        Conservation.AssertEveryInterval(outcome.ParquetPath, 3 * 3);
    }

    /// <summary>
    /// kill -9 of the node sampler while a lone raw job runs (flushed at 1.2 s, 50 more reads only in its memory), then
    /// the epilog's own finalization: the job's node rows are the node spool's flushed reads of its window, exactly,
    /// and the 200 ms no split covered are closed as unattributed in its file, which conserves.
    /// </summary>
    [Fact]
    public void TheEpilogOfAKilledSamplersJobGetsTheFlushedReadsOfItsWindowExactly()
    {
        var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: true, flushIntervalMs: 300);
        for (long t = 1; t <= 1250; t++)
        {
            Read(node, t);
            if (t == 1000) node.Snapshot(t * Ms, Wall0 + t * Ms);
            if (t % 300 == 0) node.Flush();
        }
        // Killed at 1.25 s: no Close, no End; the reads after the 1.2 s flush never reached a file.
        var stop = SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg);

        Assert.Equal("partial", stop.Status);
        var row = Row(cfg);
        Assert.Equal(1.0, row.Energy.PackageJ, 12);
        var expected = Reads(Enumerable.Range(1, 1200).Select(t => (long)t));
        Assert.Equal(expected, NodeSpoolReads(NodeDay(cfg, Day0), (0, 1250)));
        Assert.Equal(expected, ParquetRows(row.ParquetPath, SpoolSeries.NodeConsumer));
        Assert.Equal([((Wall0 + 1200 * Ms) / 1000, 200_000L, "cpu_cores:0", 120_000L), ((Wall0 + 1200 * Ms) / 1000, 200_000L, "cpu_package:0", 200_000L),
                      ((Wall0 + 1200 * Ms) / 1000, 200_000L, "dram:0", 20_000L)],
            ParquetRows(row.ParquetPath, SpoolSeries.UnattributedConsumer).Where(r => r.EndUs == (Wall0 + 1200 * Ms) / 1000));
        Conservation.AssertEveryInterval(row.ParquetPath, 2 * 3);
        GC.KeepAlive(node);
    }

    /// <summary>
    /// The copy of a window's reads into the job's spool, the finalization's first step, streams through small buffers:
    /// 10 000 reads of 3 counters (30 000 records, 0.96 MB; the bench's 11 s raw job has 62 000) allocate under 512 KB on
    /// its thread. It took four chunks of 2 MB whatever the window, on the large-object heap: garbage that the summary's
    /// and the Parquet writer's buffers came on top of (the finalize-job child's peak RSS went 34 -> 42 MB,
    /// docs/performance-log.md). The job's spool then holds every read and the split, and the epilog's finalization
    /// counts each read once; the summary reads them through 64 KB as well. Fails on 69c27c5: "CopyIn allocated 8485864
    /// bytes" (with 20 000 reads; the same 4 x 2 MB).
    /// </summary>
    [Fact]
    public void CopyingAWindowsReadsIntoTheJobsSpoolAllocatesLittle()
    {
        var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: true);
        for (long t = 1; t <= 10_000; t++) Read(node, t);
        node.Snapshot(10_000 * Ms, Wall0 + 10_000 * Ms);
        node.Flush();
        string dir = JobDir(cfg);
        Assert.Equal(6, Records(dir)); // the split only: share and unattributed per counter

        long before = GC.GetAllocatedBytesForCurrentThread();
        var problems = NodeReadWindows.CopyIn(dir);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Empty(problems);
        Assert.Equal(30_006, Records(dir));
        Assert.True(allocated < 512 * 1024, $"CopyIn allocated {allocated} bytes for 30 000 reads");
        // The summary that reads them next streams them through 64 KB too: 2.19 MB in all here. Fails without it: "the
        // summary allocated 3083552 bytes for 30 006 records" (a chunk as large as the spool, up to 2 MB).
        before = GC.GetAllocatedBytesForCurrentThread();
        var summary = Alumet.Hpc.Outputs.JobSummary.FromSpool(dir);
        allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(10.0, summary.Job.Energy.PackageJ, 9);
        Assert.True(allocated < 5 * 512 * 1024, $"the summary allocated {allocated} bytes for 30 006 records");
        // Killed here (no End): the epilog's finalization finds the reads in the job's spool, each once.
        SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg);
        var row = Row(cfg);
        Assert.Equal(10.0, row.Energy.PackageJ, 9);
        Assert.Equal(Reads(Enumerable.Range(1, 10_000).Select(t => (long)t)), ParquetRows(row.ParquetPath, SpoolSeries.NodeConsumer));
        GC.KeepAlive(node);
    }

    /// <summary>
    /// A sampler killed mid-job, a new one that recovers the job: the killed one's window ends where it stopped writing
    /// the node's spool (its 1.2 s flush), the new one's window starts at its first read; the job's file gets both
    /// windows' reads (1250 × 3 rows) and nothing of the 50 ms the kill lost; the reads no split covered are closed at
    /// the recovery, as when the job's spool held them.
    /// </summary>
    [Fact]
    public void ARestartedSamplerEndsTheKilledOnesWindowWhereItStoppedWriting()
    {
        var first = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: true, flushIntervalMs: 300);
        cfg.Sampler.KeepState = "always";
        for (long t = 1; t <= 1250; t++)
        {
            Read(first, t);
            if (t == 1000) first.Snapshot(t * Ms, Wall0 + t * Ms);
            if (t % 300 == 0) first.Flush();
        }
        // Killed at 1.25 s.
        var recovered = Assert.Single(NodeSampler.Unfinished(cfg.Paths.StateDir));
        using var second = _rig.NewNode(cfg); // primed at 1.25 s's counters, its monotonic clock from 0
        second.Register(recovered, recovered: true, 0, Wall0 + 1250 * Ms);
        for (long t = 1251; t <= 1300; t++) Read(second, t, monoMs: t - 1250);
        var outcome = second.End(recovered.Key, true, "", 50 * Ms, Wall0 + 1300 * Ms)!;
        second.Close(50 * Ms, Wall0 + 1300 * Ms);

        Assert.Equal("partial", outcome.Status);
        Assert.Contains("restarted during the job", outcome.Reason);
        Assert.Equal(1.0 + 0.05, outcome.Record!.Energy.PackageJ, 12); // its two split periods; the 0.2 J before the kill nobody split
        var expected = Reads(Enumerable.Range(1, 1200).Concat(Enumerable.Range(1251, 50)).Select(t => (long)t));
        Assert.Equal(expected, ParquetRows(outcome.ParquetPath, SpoolSeries.NodeConsumer));
        Assert.Equal(expected, NodeSpoolReads(NodeDay(cfg, Day0), (0, 1300)));
        Conservation.AssertEveryInterval(outcome.ParquetPath, 3 * 3);
        // The killed sampler's file: 1200 reads and one split (3606 records); the new one reopened it after closing
        // its unsplit reads (3 records), then 50 reads and the last split: 3765.
        Assert.Equal($"open - 0\nroll -1 {Day0} 0\nclose 3606\nopen - 0\nroll -1 {Day0} 3609\nclose 3765\n",
            File.ReadAllText(Path.Combine(JobDir(cfg), NodeReadWindows.DoneFileName)));
        GC.KeepAlive(first);
    }

    /// <summary>
    /// A finalization run again after one killed during its copy copies the reads once: killed after the copy, between
    /// the commit and the rename of the merged spool, or before the commit (half a merged file left): the job's file
    /// has each of the 300 node rows once, and conserves.
    /// </summary>
    [Theory]
    [InlineData("copied")]
    [InlineData("committed")]
    [InlineData("uncommitted")]
    public void AFinalizationRunTwiceCopiesTheNodeReadsOnce(string killed)
    {
        var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: true);
        for (long t = 1; t <= 100; t++) Read(node, t);
        node.Close(100 * Ms, Wall0 + 100 * Ms); // the sampler exits, job 42 still registered
        string dir = JobDir(cfg);
        string records = Path.Combine(dir, SpoolWriter.RecordsFile);
        byte[] before = File.ReadAllBytes(records);
        Assert.Equal(3 * 2 * SpoolRecord.Size, before.Length); // its split only
        switch (killed)
        {
            case "copied":
                NodeReadWindows.CopyIn(dir);
                Assert.Equal(3 * (100 + 2) * SpoolRecord.Size, new FileInfo(records).Length);
                break;
            case "committed": // its windows file renamed to .done, the merged spool not yet renamed over spool.bin
                NodeReadWindows.CopyIn(dir);
                File.Move(records, Path.Combine(dir, NodeReadWindows.MergedFile));
                File.WriteAllBytes(records, before);
                break;
            case "uncommitted":
                File.WriteAllBytes(Path.Combine(dir, NodeReadWindows.MergedFile), before.AsSpan(0, 5 * SpoolRecord.Size).ToArray());
                break;
        }

        var stop = SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg);

        Assert.Equal("partial", stop.Status); // the sampler is gone: finalized from the spool
        var row = Row(cfg);
        Assert.Equal(0.1, row.Energy.PackageJ, 12);
        Assert.Equal(Reads(Enumerable.Range(1, 100).Select(t => (long)t)), ParquetRows(row.ParquetPath, SpoolSeries.NodeConsumer));
        Conservation.AssertEveryInterval(row.ParquetPath, 3);
        Assert.Equal(JobFinalizer.AlreadyStatus, SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg).Status);
    }
}
