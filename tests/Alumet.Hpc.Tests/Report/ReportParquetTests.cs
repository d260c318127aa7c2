using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Report;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Outputs;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Report;

/// <summary>--parquet, --timeline and --plot on a job finalized through the real chain (spool → JobFinalizer → Parquet + row).</summary>
public sealed class ReportParquetTests : IDisposable
{
    private const long Sec = 1_000_000_000;
    private readonly TempDir _dir = new();
    private readonly AlumetConfig _cfg = new();
    private readonly SpoolMeta _meta;

    /// <summary>
    /// Job 4242 on n1, 20 s at 1 s storage: socket 0 package node 50 W = job 30 + other jobs 15 + unattributed 5, DRAM node
    /// 10 W = job 6 + other 3 + unattributed 1, and psys (not counted) 70 W for the node; from second 10 on the job's
    /// package share doubles to 40 W (other jobs 5 W).
    /// </summary>
    public ReportParquetTests()
    {
        _cfg.Paths.DataDir = _dir.Sub("data");
        _cfg.Paths.StateDir = _dir.Path; // the name key's directory (never the machine's own state_dir)
        _cfg.Paths.Database = _dir.Sub("acct.db");
        var meta = Meta("4242");
        meta.StoragePeriodMs = 1000;
        string[] consumers = ["node", "job:4242", "other_jobs", "unattributed"];
        foreach (var kind in new[] { "cpu_package", "dram" })
            foreach (var c in consumers) meta.Series.Add(S(c, kind, "0"));
        meta.Series.Add(S("node", "psys", "0"));
        var records = new List<SpoolRecord>();
        for (int t = 1; t <= 20; t++)
        {
            long w = T0 + t * Sec;
            long[] pkg = t <= 10 ? [50, 30, 15, 5] : [50, 40, 5, 5];
            long[] dram = [10, 6, 3, 1];
            for (int c = 0; c < 4; c++) records.Add(R(w, Sec, pkg[c] * 1_000_000, c));
            for (int c = 0; c < 4; c++) records.Add(R(w, Sec, dram[c] * 1_000_000, 4 + c));
            records.Add(R(w, Sec, 70_000_000, 8));
        }
        Write(_dir.Sub("state"), meta, records);
        _meta = meta;
        JobFinalizer.Finalize(_dir.Sub("state"), _cfg, complete: true, "");
    }

    public void Dispose() => _dir.Dispose();

    private (int Code, string Out, string Err) Report(int uid, string user, params string[] args)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int code = ReportCommand.Run(args, new ReportEnvironment(uid, false, _cfg.Paths.Database, o, e));
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void ParquetPrintsTheJobsFilesOnlyToItsUser()
    {
        string expected = ParquetDataset.JobFile(_cfg.Paths, _meta);
        var (code, output, err) = Report(1001, "alice", "--job", "4242", "--parquet");
        Assert.Equal((0, expected + "\n", ""), (code, output, err));
        Assert.True(File.Exists(expected));

        var other = Report(1002, "bob", "--job", "4242", "--parquet");
        Assert.Equal(1, other.Code);
        Assert.Equal("", other.Out);
        Assert.Contains("job 4242 not found", other.Err);
    }

    [Fact]
    public void TimelineShowsPowerPerDomainAndPeriod()
    {
        var (code, output, err) = Report(1001, "alice", "--job", "4242", "--timeline");
        Assert.Equal((0, ""), (code, err));
        var lines = output.Split('\n');
        Assert.Equal("job 4242: power per 1 s (Σ energy / Σ time in each period), W, 2025-11-13T02:13:20Z to 2025-11-13T02:13:40Z", lines[0]);
        string Line(string domain, string consumer) => Assert.Single(lines, l => l.StartsWith(domain.PadRight(13) + "  " + consumer.PadRight(12) + " ", StringComparison.Ordinal));
        Assert.Equal("cpu_package:0  job:4242          35.0      40.0  ▆▆▆▆▆▆▆▆▆▆██████████", Line("cpu_package:0", "job:4242"));
        Assert.Equal("dram:0         job:4242           6.0       6.0  ████████████████████", Line("dram:0", "job:4242"));
        Assert.Equal("total          job:4242          41.0      46.0  ▆▆▆▆▆▆▆▆▆▆██████████", Line("total", "job:4242"));
        Assert.Equal("psys:0         node              70.0      70.0  ████████████████████", Line("psys:0", "node"));
        Assert.Equal("total          node              60.0      60.0  ████████████████████", Line("total", "node"));
        Assert.Equal("total          unattributed       6.0       6.0  ████████████████████", Line("total", "unattributed"));
        Assert.Contains("period start (UTC)        job:4242          node    other_jobs  unattributed   (W, counted domains: package + dram + gpu)", output);
        Assert.Contains("2025-11-13 02:13:20          36.0          60.0          18.0           6.0\n", output);
        Assert.Contains("2025-11-13 02:13:39          46.0          60.0           8.0           6.0\n", output);
        Assert.Equal(20, lines.Count(l => l.StartsWith("2025-11-13 02:13:", StringComparison.Ordinal)));
    }

    /// <summary>
    /// README "--timeline": at most 40 periods. Job 4343, 200 s at 1 s storage (package node 50 W, job 30 W, then 40 W
    /// from second 101): 40 periods of 5 s, each the mean of its five rows.
    /// </summary>
    [Fact]
    public void TimelineOfALongJobHasAtMost40Periods()
    {
        var meta = Meta("4343");
        meta.StoragePeriodMs = 1000;
        meta.Series.Add(S("node", "cpu_package", "0"));
        meta.Series.Add(S("job:4343", "cpu_package", "0"));
        var records = new List<SpoolRecord>();
        for (int t = 1; t <= 200; t++)
        {
            records.Add(R(T0 + t * Sec, Sec, 50_000_000, 0));
            records.Add(R(T0 + t * Sec, Sec, (t <= 100 ? 30 : 40) * 1_000_000L, 1));
        }
        Write(_dir.Sub("state4343"), meta, records);
        JobFinalizer.Finalize(_dir.Sub("state4343"), _cfg, complete: true, "");

        var (code, output, err) = Report(1001, "alice", "--job", "4343", "--timeline");
        Assert.Equal((0, ""), (code, err));
        var lines = output.Split('\n');
        Assert.Equal("job 4343: power per 5 s (Σ energy / Σ time in each period), W, 2025-11-13T02:13:20Z to 2025-11-13T02:16:40Z", lines[0]);
        Assert.Equal("cpu_package:0  job:4343      35.0      40.0  " + new string('▆', 20) + new string('█', 20),
                     Assert.Single(lines, l => l.StartsWith("cpu_package:0  job:4343 ", StringComparison.Ordinal)));
        Assert.Equal(40, lines.Count(l => l.StartsWith("2025-11-13 02:1", StringComparison.Ordinal)));
        Assert.Contains("2025-11-13 02:13:20          30.0          50.0\n", output);
        Assert.Contains("2025-11-13 02:16:35          40.0          50.0\n", output);
    }

    [Fact]
    public void PlotDrawsTheJobsDomainsAndTheOtherConsumersAsPngAndSvg()
    {
        var t = PowerTimeline.ReadAsync([Report(1001, "alice", "--job", "4242", "--parquet").Out.Trim()], ReportTimeline.MaxPeriods).GetAwaiter().GetResult();
        var series = PowerPlot.Lines(t).Select(l => (l.Label, l.Dashed, l.Y.Length, l.Y.Max())).ToList();
        Assert.Equal([
            ("job:4242 cpu_package:0", false, 20, 40.0), ("job:4242 dram:0", false, 20, 6.0), ("job:4242 (package+dram+gpu)", false, 20, 46.0),
            ("node (package+dram+gpu)", true, 20, 60.0), ("other_jobs (package+dram+gpu)", true, 20, 18.0), ("unattributed (package+dram+gpu)", true, 20, 6.0),
        ], series);

        var sw = System.Diagnostics.Stopwatch.StartNew();
        var (code, output, err) = Report(1001, "alice", "--job", "4242", "--plot", _dir.Sub("p.png"));
        sw.Stop();
        Assert.Equal((0, "", $"alumet-report: wrote {_dir.Sub("p.png")} (6 series)\n"), (code, output, err));
        var png = File.ReadAllBytes(_dir.Sub("p.png"));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        Assert.Equal(PowerPlot.Width, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(PowerPlot.Height, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        Assert.True(png.Length > 20_000, $"{png.Length} bytes: lines and text drawn");
        Console.WriteLine($"plot: {png.Length} bytes in {sw.ElapsedMilliseconds} ms (first plot in the process)");
        if (Environment.GetEnvironmentVariable("ALUMET_KEEP_PLOT") is { Length: > 0 } keep) File.Copy(_dir.Sub("p.png"), keep, true);

        Assert.Equal(0, Report(1001, "alice", "--job", "4242", "--plot", _dir.Sub("p.svg")).Code);
        string svg = File.ReadAllText(_dir.Sub("p.svg"));
        Assert.StartsWith("<?xml", svg);
        Assert.Contains("<svg", svg);
    }

    [Fact]
    public void BadPlotArgumentsAreOneLineErrors()
    {
        Assert.Equal((2, "", "alumet-report: error: --plot x.jpg: the file name must end in .png or .svg\n"), Report(1001, "alice", "--job", "4242", "--plot", "x.jpg"));
        Assert.Equal((2, "", "alumet-report: error: --parquet, --timeline and --plot need --job N\n"), Report(1001, "alice", "--timeline"));
        Assert.Equal((2, "", "alumet-report: error: --timeline and --plot take one job: --job N\n"), Report(1001, "alice", "--job", "4242,4243", "--plot", "x.png"));
        var dir = Report(1001, "alice", "--job", "4242", "--plot", _dir.Sub("no/such/dir/p.png"));
        Assert.Equal(1, dir.Code);
        Assert.StartsWith($"alumet-report: error: cannot write {_dir.Sub("no/such/dir/p.png")}: ", dir.Err);
        Assert.Single(dir.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
