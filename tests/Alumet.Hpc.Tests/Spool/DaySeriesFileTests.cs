using Alumet.Hpc.Jobs;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>
/// The node day spool lists its series in an append-only series file (Spool/SeriesCatalogue.cs): every job adds
/// its own series to the day, and meta.json, listing them all, was rewritten whole at each (2436 series, 541 KB in a
/// lab day). Through the node sampler's real entry points: Register, Snapshot, Flush, End, a restart.
/// </summary>
public sealed class DaySeriesFileTests : IDisposable
{
    /// <summary>Finalizes nothing (the job's state dir stays): the tests look at the node's day only.</summary>
    private sealed class Kept : IJobFinalization
    {
        public JobFinalizer.Outcome Finalize(string stateDir, bool complete, string reason) => new("kept", "", "", null);
        public void RetryQueuedRows(string what) { }
        public void RetryExports() { }
        public string ExportNodeDay(string spoolDir) => "";
        public void RecordNotMeasured(JobIdentity job, string reason) { }
    }

    /// <summary>The day's series file (SeriesCatalogue.FileName), by name: these tests also run against the version before it.</summary>
    private const string SeriesFile = "series.jsonl";
    private const long Ms = 1_000_000, Wall0 = 1_700_000_000_000 * Ms; // 2023-11-14T22:13:20Z
    private readonly NodeRig _rig = new();

    private static string Id(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string DayDir(Alumet.Hpc.Config.AlumetConfig cfg) =>
        Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Single();

    /// <summary>
    /// A period closed at <paramref name="ms"/> on the sampler's clock (Wall0 + <paramref name="wallMs"/>): the package
    /// counter at <paramref name="package"/> µJ (cores 60 %, dram 10 %), /proc/stat's busy ticks at its ten-thousandth,
    /// the jobs' CPU times.
    /// </summary>
    private void Period(NodeSampler node, long ms, long wallMs, ulong package, params (string Job, ulong Ns)[] cpu)
    {
        _rig.SetCounters(package, package * 6 / 10, package / 10);
        _rig.Proc.SetStat(package / 10_000, 0);
        foreach (var (job, ns) in cpu) _rig.SetJobCpu(job, ns);
        node.Snapshot(ms * Ms, Wall0 + wallMs * Ms);
    }

    /// <summary>One job on the node (aggregated storage): registered, one period split with it, flushed, ended.</summary>
    private void RunJob(NodeSampler node, int id, ref long t)
    {
        _rig.SetJobCpu(Id(id), 0);
        node.Register(NodeRig.Job(Id(id)), false, t * Ms, Wall0 + t * Ms);
        t += 100;
        Period(node, t, t, (ulong)t * 1_000, (Id(id), 40_000_000)); // node, the job's share, unattributed per channel: the job's 3 series are new
        node.Flush();
        t += 50;
        node.End(NodeRig.Job(Id(id)).Key, true, "", t * Ms, Wall0 + t * Ms);
    }

    /// <summary>
    /// The 301st job of a day adds its 3 series to the day's series file, and nothing else is rewritten: meta.json keeps
    /// its bytes and its time, whatever the 300 jobs before it added. It was rewritten whole, growing with the day.
    /// </summary>
    [Fact]
    public void AJobsSeriesAreAppendedToTheDayNotRewrittenWithAllTheDaysSeries()
    {
        var cfg = _rig.Config();
        _rig.AtZero();
        using var node = _rig.NewNode(cfg, new Kept());
        long t = 0;
        for (int id = 1; id <= 300; id++) RunJob(node, id, ref t);
        string day = DayDir(cfg);
        string meta = Path.Combine(day, SpoolWriter.MetaFile), series = Path.Combine(day, SeriesFile);
        var longAgo = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(meta, longAgo);
        byte[] metaBefore = File.ReadAllBytes(meta);
        Assert.Equal(3 + 300 * 3 + 3, SpoolWriter.ReadMeta(day).Series.Count); // node, each job's share, unattributed per channel

        RunJob(node, 301, ref t);

        Assert.True(File.GetLastWriteTimeUtc(meta) == longAgo,
            $"meta.json was rewritten for job 301's 3 series: {new FileInfo(meta).Length} bytes listing {SpoolWriter.ReadMeta(day).Series.Count} series");
        Assert.Equal(metaBefore, File.ReadAllBytes(meta));
        string[] lines = File.ReadAllLines(series);
        Assert.Equal(3 + 301 * 3 + 3, lines.Length);
        Assert.All(lines[^3..], l => Assert.StartsWith("{\"consumer\":\"job:301\",", l));
        var all = SpoolWriter.ReadMeta(day).Series;
        Assert.Equal(["job:301", "job:301", "job:301"], all.Skip(all.Count - 3).Select(s => s.Consumer));
        Assert.Equal(["cpu_package", "cpu_cores", "dram"], all.Skip(all.Count - 3).Select(s => s.ResourceKind));
        // Per counter: each job's first period, and the one its End closed (not the last job's: flushed before its End).
        Conservation.AssertEveryInterval(day, (301 * 2 - 1) * 3);
        node.Close(t * Ms, Wall0 + t * Ms);
    }

    /// <summary>
    /// A sampler killed after a flush wrote job 43's series lines but before its records reached spool.bin, and again
    /// in the middle of a later line (the file ends in half a line): the sampler that reopens the day keeps job 43's
    /// ids, cuts the torn half off, and appends job 44's series after them. No series is lost or renumbered; every
    /// record names a listed series, and every interval of the day conserves.
    /// </summary>
    [Fact]
    public void AKillBetweenASeriesLineAndItsRecordsOrInTheMiddleOfALineLosesNoSeries()
    {
        var cfg = _rig.Config();
        _rig.AtZero("42", "43");
        var first = _rig.NewNode(cfg, new Kept());
        first.Register(NodeRig.Job("42"), false, 0, Wall0);
        Period(first, 100, 100, 100_000, ("42", 50_000_000));
        first.Flush();
        string day = DayDir(cfg);
        string records = Path.Combine(day, SpoolWriter.RecordsFile), series = Path.Combine(day, SeriesFile);
        long before = new FileInfo(records).Length;
        Assert.Equal(9L * SpoolRecord.Size, before);
        first.Register(NodeRig.Job("43"), false, 100 * Ms, Wall0 + 100 * Ms);
        Period(first, 200, 200, 200_000, ("43", 30_000_000));
        first.Flush();
        // Killed after the flush's series lines, before its records: spool.bin as it was before that flush.
        using (var f = new FileStream(records, FileMode.Open)) f.SetLength(before);
        Assert.Equal(12, File.ReadAllLines(series).Length);
        // And killed in the middle of a later line.
        File.AppendAllText(series, "{\"consumer\":\"job:44\",\"resou");
        GC.KeepAlive(first);

        var recovered = NodeSampler.Unfinished(cfg.Paths.StateDir).OrderBy(r => r.Job.JobId, StringComparer.Ordinal).ToList();
        Assert.Equal(["42", "43"], recovered.Select(r => r.Job.JobId));
        using var second = _rig.NewNode(cfg, new Kept()); // primed at 200 ms's counters
        foreach (var r in recovered) second.Register(r, recovered: true, 0, Wall0 + 300 * Ms);
        Period(second, 100, 400, 300_000, ("42", 80_000_000), ("43", 50_000_000)); // the day reopened: job 43's series are ids 9-11
        _rig.SetJobCpu("44", 0);
        second.Register(NodeRig.Job("44"), false, 100 * Ms, Wall0 + 400 * Ms);
        Period(second, 200, 500, 400_000, ("44", 20_000_000));
        second.Flush();

        string text = File.ReadAllText(series);
        Assert.EndsWith("}\n", text);
        Assert.DoesNotContain("resou{", text); // the torn half was cut off, not continued
        var all = SpoolWriter.ReadMeta(day).Series;
        Assert.Equal(15, File.ReadAllLines(series).Length);
        Assert.Equal(["node", "job:42", "unattributed", "node", "job:42", "unattributed", "node", "job:42", "unattributed", "job:43", "job:43", "job:43", "job:44", "job:44", "job:44"],
            all.Select(s => s.Consumer));
        var rows = Sampling.NodeSamplerTests.Rows(day);
        // The first period (9 rows), the restarted sampler's (4 consumers × 3), the next (5 × 3); never job 43's lost period.
        Assert.Equal(9 + 12 + 15, rows.Count);
        Assert.Equal(new long[] { 100_000, 100_000, 100_000 }, rows.Where(x => x.Resource == "cpu_package:0" && x.Consumer == "node").Select(x => x.R.Value));
        Assert.Equal(2, rows.Count(x => x.Consumer == "job:43" && x.Resource == "cpu_package:0"));
        Conservation.AssertEveryInterval(day, 3 * 3); // the three periods of the 9 + 12 + 15 rows, per counter
        second.Close(200 * Ms, Wall0 + 500 * Ms);
    }

    /// <summary>
    /// A day the version before wrote (every series in meta.json, no series file) is read as it was, and the sampler
    /// that reopens it gives it its series file once: the same ids, the old records naming the same series, meta.json
    /// without them; a later reopen only appends. Its node file conserves in every interval.
    /// </summary>
    [Fact]
    public void ADayOfTheVersionBeforeIsReadAsItWasAndGetsItsSeriesFileOnce()
    {
        var cfg = _rig.Config();
        string day = Path.Combine(NodeSpool.Root(cfg), "2023-11-14");
        // The day as the version before wrote it: its meta.json lists every series (a spool without a series file).
        var old = new SpoolMeta { ToolVersion = "0.9.0", Scheduler = "node", Cluster = "test", JobId = "node", User = "root", Uid = 0, Node = "node1", StartWallNs = Wall0 - 1000 * Ms, StoragePeriodMs = 1000, AttributionPeriodMs = 1000, AttributionMode = "cgroup-cpu-time", Perimeter = "test perimeter" };
        old.SourceHz["rapl"] = 1000;
        string[] kinds = ["cpu_package", "cpu_cores", "dram"], labels = ["package-0", "core", "dram"];
        foreach (string consumer in new[] { "node", "job:41", "unattributed" })
            for (int c = 0; c < 3; c++)
                old.Series.Add(new SpoolSeries { Consumer = consumer, ResourceKind = kinds[c], ResourceId = "0", Interface = "powercap", JoulesPerUnit = 1e-6, Label = labels[c] });
        using (var w = new SpoolWriter(day, old))
            for (int c = 0; c < 3; c++)
            {
                w.Append(new SpoolRecord { WallNs = Wall0 - 500 * Ms, IntervalNs = 500 * Ms, Value = 1_000, Series = c });
                w.Append(new SpoolRecord { WallNs = Wall0 - 500 * Ms, IntervalNs = 500 * Ms, Value = 600, Series = 3 + c });
                w.Append(new SpoolRecord { WallNs = Wall0 - 500 * Ms, IntervalNs = 500 * Ms, Value = 400, Series = 6 + c });
            }
        Assert.DoesNotContain("series_file", File.ReadAllText(Path.Combine(day, SpoolWriter.MetaFile)));
        Assert.False(File.Exists(Path.Combine(day, SeriesFile)));
        var oldRows = Sampling.NodeSamplerTests.Rows(day);
        Assert.Equal(9, oldRows.Count);

        _rig.AtZero();
        var node = _rig.NewNode(cfg, new Kept());
        long t = 0;
        RunJob(node, 42, ref t); // reopens the day
        string series = Path.Combine(day, SeriesFile);
        string metaText = File.ReadAllText(Path.Combine(day, SpoolWriter.MetaFile));
        Assert.Contains("\"series\": []", metaText);
        Assert.Contains("\"series_file\": \"series.jsonl\"", metaText);
        var all = SpoolWriter.ReadMeta(day).Series;
        Assert.Equal(12, all.Count); // the 9 of before, then job 42's
        Assert.Equal(old.Series.Select(s => (s.Consumer, s.ResourceKind, s.ResourceId, s.Interface, s.JoulesPerUnit, s.Label)),
            all.Take(9).Select(s => (s.Consumer, s.ResourceKind, s.ResourceId, s.Interface, s.JoulesPerUnit, s.Label)));
        Assert.Equal(["job:42", "job:42", "job:42"], all.Skip(9).Select(s => s.Consumer));
        var rows = Sampling.NodeSamplerTests.Rows(day);
        Assert.Equal(oldRows, rows.Take(9));
        byte[] seriesBefore = File.ReadAllBytes(series);
        GC.KeepAlive(node); // killed

        using var again = _rig.NewNode(cfg); // finalizes and exports in this process
        t = 1000; // its own clock from 0, the wall after job 42's
        RunJob(again, 43, ref t);
        byte[] seriesAfter = File.ReadAllBytes(series);
        Assert.Equal(seriesBefore, seriesAfter.AsSpan(0, seriesBefore.Length).ToArray()); // appended to, never rewritten
        Assert.Equal(15, File.ReadAllLines(series).Length);
        Conservation.AssertEveryInterval(day, 4 * 3); // per counter: the version before's period, 42's first, the second sampler's until 43 registered, 43's first
        again.Close(t * Ms, Wall0 + t * Ms);
        string nodeFile = NodeSpool.ParquetPath(cfg, "test", "node1", "2023-11-14");
        // Per counter: the version before's period, 42's first (its end's was not flushed before the kill), the second
        // sampler's until 43 registered (a registration closes the period), 43's two.
        Conservation.AssertEveryInterval(nodeFile, 3 * 5);
    }

    public void Dispose() => _rig.Dispose();
}
