using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Report;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

public sealed class ReportCommandTests : IClassFixture<ReportFixture>
{
    private readonly ReportFixture _f;
    private const int Alice = 1001;

    public ReportCommandTests(ReportFixture f) => _f = f;

    [Fact]
    public void GoldenTable()
    {
        var (code, output, err) = _f.Run(0, "root", "-j", "1234,1300,1400,1500");
        Assert.Equal(0, code);
        Assert.Equal("", err);
        Golden.Check("report-table.txt", output);
    }

    [Fact]
    public void GoldenParsable2()
    {
        var (code, output, err) = _f.Run(0, "root", "-j", "1234,1300,1400,1500", "-P");
        Assert.Equal(0, code);
        Golden.Check("report-parsable2.txt", output);
        Golden.Check("report-parsable2.stderr.txt", err); // notes go to stderr to keep stdout machine-readable
    }

    [Fact]
    public void GoldenJson()
    {
        var (code, output, _) = _f.Run(0, "root", "-j", "1234,1300,1400,1500", "--json");
        Assert.Equal(0, code);
        Golden.Check("report.json", output);
        using var doc = System.Text.Json.JsonDocument.Parse(output); // valid JSON
        Assert.Equal(4, doc.RootElement.GetProperty("jobs").GetArrayLength());
    }

    [Fact]
    public void GoldenNoConvertWidthsAndParsable()
    {
        var (code, output, _) = _f.Run(0, "root", "-j", "1234", "-o", "jobid%-14,node%4,TotalEnergy,AvePower,maxpower,Elapsed,Start,End,Samples", "--noconvert", "-p");
        Assert.Equal(0, code);
        Golden.Check("report-noconvert-parsable.txt", output);
        var (_, table, _) = _f.Run(0, "root", "-j", "1300", "-o", "JobID%-14,NodeList%4,TotalEnergy%8,Status", "--noheader");
        Golden.Check("report-widths.txt", table);
    }

    [Fact]
    public void ParsableHasNoTrailingBarAndParsableHasOne()
    {
        var p2 = _f.Run(0, "root", "-j", "1234", "-o", "JobID,TotalEnergy", "-P", "-n").Out;
        var p1 = _f.Run(0, "root", "-j", "1234", "-o", "JobID,TotalEnergy", "-p", "-n").Out;
        Assert.Equal("1234|3.79M\n1234.batch|12.60K\n1234.0|3.76M\n", p2);
        Assert.Equal("1234|3.79M|\n1234.batch|12.60K|\n1234.0|3.76M|\n", p1);
    }

    [Fact]
    public void JsonOfStepsShowsOnlyThoseSteps()
    {
        var (code, output, _) = _f.Run(0, "root", "-j", "1234.batch,1300.0,1234.batch", "--json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        var ids = doc.RootElement.GetProperty("jobs").EnumerateArray()
            .Select(j => j.GetProperty("job_id").GetInt64() + ":" + string.Join(",", j.GetProperty("steps").EnumerateArray().Select(l => l.GetProperty("step").GetProperty("id").GetString())));
        Assert.Equal(["1234:1234.batch", "1300:1300.0"], ids);
        var p = _f.Run(0, "root", "-j", "1300.0,1300", "-o", "JobID,NodeList", "-P", "-n").Out;
        Assert.Equal("1300.0|n[1-2]\n1300|n[1-2]\n1300|n1\n1300|n2\n", p); // the step is not printed twice
    }

    /// <summary>
    /// A multi-node job's WallModelEnergy is the nodes' sum only when every measured node has a model: a node without
    /// one (uncalibrated, or a job that shared it) made the job line a partial sum shown as the job's.
    /// </summary>
    [Fact]
    public void AMultiNodeJobsWallModelEnergyIsNotAPartialSum()
    {
        using var f = new ReportFixture();
        var t = new DateTime(2026, 11, 25, 9, 0, 0, DateTimeKind.Utc);
        var e = new global::Alumet.Hpc.Outputs.DomainEnergies(1000, 0, 0, 0, 0, 0);
        using (var db = AccountingDb.Open(f.Db))
        {
            db.Upsert(ReportFixture.Rec("1700", "n1", "bob", 1002, t, 10, e, 100) with { WallModel = "a=1.1 b=40", WallModelEnergyJ = 1500, WallModelUncertaintyJ = 30 });
            db.Upsert(ReportFixture.Rec("1700", "n2", "bob", 1002, t, 10, e, 100));
            db.Upsert(ReportFixture.Rec("1701", "n1", "bob", 1002, t, 10, e, 100) with { WallModel = "a=1.1 b=40", WallModelEnergyJ = 1500, WallModelUncertaintyJ = 30 });
            db.Upsert(ReportFixture.Rec("1701", "n2", "bob", 1002, t, 10, e, 100) with { WallModel = "a=1.1 b=40", WallModelEnergyJ = 1600, WallModelUncertaintyJ = 40 });
        }
        var (code, output, _) = f.Run(0, "root", "-j", "1700,1701", "-o", "JobID,NodeList,WallModelEnergy", "-P", "-n");
        Assert.Equal((0, "1700|n[1-2]|\n1700|n1|1.50K±30\n1700|n2|\n1701|n[1-2]|3.10K±50\n1701|n1|1.50K±30\n1701|n2|1.60K±40\n"), (code, output));
    }

    [Fact]
    public void AllocationsOnlyPrintsJobLines()
    {
        var (code, output, _) = _f.Run(0, "root", "-a", "-X", "-o", "JobID,NodeList,TotalEnergy", "-P", "-n");
        Assert.Equal(0, code);
        Assert.Equal("1234|n1|3.79M\n1300|n[1-2]|19.45M\n1400|n3|60K\n1500|n4|\n", output);
    }

    [Fact]
    public void StepSelectionPrintsOnlyThatStep()
    {
        var (code, output, _) = _f.Run(0, "root", "-j", "1300.0", "-o", "JobID,NodeList,TotalEnergy,MaxPower", "-P");
        Assert.Equal(0, code);
        Assert.Equal("JobID|NodeList|TotalEnergy|MaxPower\n1300.0|n[1-2]|1.08M|\n", output);
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("12a")]
    [InlineData("1234;rm -rf /")]
    [InlineData("1234.")]
    [InlineData("-5")]
    [InlineData("1234.b@d")]
    public void BadJobIdIsOneErrorLine(string id)
    {
        var (code, output, err) = _f.Run(0, "root", "--job", id);
        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Single(err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("alumet-report: error: invalid job id '", err);
    }

    [Fact]
    public void UnknownJobPrintsTheHeaderAndExitsZeroLikeSacct()
    {
        var (code, output, err) = _f.Run(0, "root", "-j", "999999");
        Assert.Equal(0, code);
        Assert.Equal($"alumet-report: note: job 999999 not found in {_f.Db}\n", err);
        Assert.Equal(3, output.Split('\n').Length); // header, rule, nothing else
        Assert.StartsWith("       JobID ", output);
        var step = _f.Run(0, "root", "-j", "1234.7", "-P");
        Assert.Equal((0, "JobID|User|NodeList|Elapsed|PackageEnergy|DramEnergy|GpuEnergy|TotalEnergy|TotalEnergyU|AvePower|MaxPower|Interface|Status\n",
            $"alumet-report: note: job 1234.7 not found in {_f.Db}\n"), step);
    }

    [Fact]
    public void SomeoneElsesJobReadsExactlyLikeAMissingOne()
    {
        var other = _f.Run(Alice, "alice", "-j", "1300", "-P");
        var missing = _f.Run(Alice, "alice", "-j", "1299", "-P");
        Assert.Equal(0, other.Code);
        Assert.Equal($"alumet-report: note: job 1300 not found in {_f.Db} (or not yours)\n", other.Err);
        Assert.Equal(missing.Err.Replace("1299", "1300"), other.Err);
        Assert.Equal(missing.Out, other.Out);
        Assert.DoesNotContain("bob", other.Out + other.Err);
    }

    [Fact]
    public void UserSeesOwnJobsOnly()
    {
        var (code, output, _) = _f.Run(Alice, "alice", "-o", "JobID,User", "-P", "-n");
        Assert.Equal(0, code);
        Assert.Equal("1234|alice\n1234.batch|alice\n1234.0|alice\n1400|alice\n", output);
        // Asking for another user's jobs by name does not bypass the uid filter.
        Assert.Equal("", _f.Run(Alice, "alice", "-u", "bob", "-P", "-n").Out);
        // A name in $USER-like input does not matter: the uid decides (uid 1001 named "root" is not root).
        Assert.Equal("", _f.Run(Alice, "root", ["ops"], "-u", "bob", "-P", "-n").Out);
    }

    [Fact]
    public void AdminsAndRootSeeEveryone()
    {
        var ops = _f.Run(1500, "ops", ["root", "ops"], "-j", "1300", "-o", "JobID,User,NodeList", "-P", "-n");
        Assert.Equal(0, ops.Code);
        Assert.Equal("1300|bob|n[1-2]\n1300|bob|n1\n1300|bob|n2\n1300.0|bob|n[1-2]\n", ops.Out);
        var root = _f.Run(0, "root", [], "-u", "carol", "-o", "JobID,Status,Reason%50", "-P", "-n");
        Assert.Equal("1500|not_measured|no energy counter (RAPL absent, estimate off)\n", root.Out);
    }

    [Fact]
    public void ClusterFilter()
    {
        Assert.Equal("", _f.Run(0, "root", "-a", "-M", "other", "-P", "-n").Out);
        Assert.Equal(3 + 4 + 1 + 1, _f.Run(0, "root", "-a", "-M", "lab", "-P", "-n").Out.TrimEnd('\n').Split('\n').Length);
    }

    [Fact]
    public void UnknownFieldAndBadOptionAreOneLine()
    {
        var bad = _f.Run(0, "root", "-o", "JobID,Bogus");
        Assert.Equal(2, bad.Code);
        Assert.StartsWith("alumet-report: error: unknown --format field 'Bogus'", bad.Err);
        Assert.Single(bad.Err.TrimEnd('\n').Split('\n'));
        var opt = _f.Run(0, "root", "--frobnicate");
        Assert.Equal(2, opt.Code);
        Assert.Single(opt.Err.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("alumet-report: error: ", opt.Err);
        Assert.Equal(2, _f.Run(0, "root", "-o", "JobID%0").Code);
    }

    [Fact]
    public void MissingDatabaseIsOneLine()
    {
        string path = _f.Dir.Sub("nope/acct.db");
        var (code, output, err) = _f.Run(0, "root", "--db", path, "-j", "1");
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Equal($"alumet-report: error: no accounting database at {path}\n", err);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void EstimatedRowsAreMarked()
    {
        var (_, output, _) = _f.Run(0, "root", "-j", "1400");
        Assert.Contains(" estimate(generic-per-core) ", output);
        Assert.Contains("ESTIMATED: job 1400 on n3: energy from the CPU-time power model 'generic-per-core', not a measurement.", output);
        var p = _f.Run(0, "root", "-j", "1400", "-o", "Interface%40,Estimated", "-P", "-n").Out;
        Assert.Equal("estimate(generic-per-core)|yes\n", p);
    }

    /// <summary>
    /// -N host lists are counted against the 30 000-value limit before any host name is built: 1000 expressions of 9999
    /// nodes (a 14 KB argument; one of 128 KiB, which the kernel takes, holds 13 000 such as n[1-9999]) are one sentence,
    /// exit 2, in a few kB. Fails on 682d3dc: every name was built first (9 999 000 strings: 1 747 107 472 bytes allocated
    /// here; the binary's peak RSS 810 MB, 15 s), and only then refused.
    /// </summary>
    [Fact]
    public void NodeListsAreCountedBeforeTheyAreBuilt()
    {
        string nodes = string.Join(',', Enumerable.Range(0, 1000).Select(i => $"n{i}x[1-9999]"));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var (code, output, err) = _f.Run(Alice, "alice", "-N", nodes, "-P", "-n");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal((2, "", "alumet-report: error: too many values in -j, -u, -M, -N and --name together (9999000; at most 30000): split the query\n"),
            (code, output, err));
        Assert.True(allocated < 16 << 20, $"{allocated} bytes allocated to refuse the node list");
    }
}

public sealed class ReportFieldsTests
{
    [Theory]
    [InlineData(0, "0")]
    [InlineData(816, "816")]
    [InlineData(123.456, "123.46")]
    [InlineData(999.994, "999.99")]
    [InlineData(999.996, "1.00K")]
    [InlineData(1000, "1K")]
    [InlineData(1234, "1.23K")]
    [InlineData(2_500_000, "2.50M")]
    [InlineData(3_000_000_000, "3G")]
    [InlineData(1.5e13, "15T")]
    public void SiPrefixes(double v, string expected) => Assert.Equal(expected, ReportFields.SiPrefixed(v));

    [Theory]
    [InlineData(0, "00:00:00")]
    [InlineData(59.9, "00:00:59")]
    [InlineData(3661.5, "01:01:01")]
    [InlineData(86399, "23:59:59")]
    [InlineData(90061, "1-01:01:01")]
    [InlineData(10 * 86400 + 5, "10-00:00:05")]
    public void ElapsedLikeSacct(double s, string expected) => Assert.Equal(expected, ReportFields.Elapsed(s));

    [Fact]
    public void FieldNamesAreCaseInsensitiveWithWidths()
    {
        var specs = ReportFields.Parse("jobid%20,NODE,totalenergy%-7");
        Assert.Equal(["JobID", "NodeList", "TotalEnergy"], specs.Select(s => s.Field.Name));
        Assert.Equal([20, 15, 7], specs.Select(s => s.Width));
        Assert.Equal([false, false, true], specs.Select(s => s.LeftJustify));
        Assert.Throws<FormatException>(() => ReportFields.Parse("JobID%x"));
        Assert.Throws<FormatException>(() => ReportFields.Parse(""));
    }
}
