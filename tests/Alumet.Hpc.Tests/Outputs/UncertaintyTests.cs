using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Uncertainty;
using Alumet.Hpc.Spool;
using Xunit;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// docs/uncertainty.md on synthetic spools: every expected value is written out by hand from the documented formulas
/// with the default model (rapl 5 %, NVML 5 %, coverage 0.25, attribution 20 %, k = 2, max_power_w 1000).
/// </summary>
public sealed class UncertaintyTests
{
    private const long Sec = 1_000_000_000;
    private const double Q = 1.0 / 16384;          // RAPL quantum 2^-14 J
    private const double Qn = 1e-3;                 // NVML quantum 1 mJ

    private static JobSummary Summarize(SpoolMeta meta, params SpoolRecord[] records)
    {
        using var tmp = new TempDir();
        Write(tmp.Path, meta, records);
        return JobSummary.FromSpool(tmp.Path);
    }

    [Fact]
    public void ExclusiveRaplJobHasInterfaceAndQuantisationTermsOnly()
    {
        var meta = Meta("1");
        meta.AttributionMode = "exclusive";
        meta.Series.Add(S("node", "cpu_package", "0"));
        meta.Series.Add(S("job:1", "cpu_package", "0"));
        var recs = new List<SpoolRecord>();
        for (int i = 1; i <= 3; i++)
        {
            recs.Add(R(T0 + i * Sec, Sec, 100_000_000, 0));
            recs.Add(R(T0 + i * Sec, Sec, 100_000_000, 1));
        }
        var u = Summarize(meta, recs.ToArray()).Job.Uncertainty;

        Assert.Equal(300.0 * 0.05, u.InterfacesJ, 12);                           // 15 J
        Assert.Equal(0, u.AttributionJ);                                          // exclusive: nothing split
        Assert.Equal(Math.Sqrt(3 * (Q * Q / 6 + 1e-12 / 12)), u.RandomJ, 15);    // 3 share records
        Assert.Equal(0, u.MissedJ);
        Assert.Equal(2, u.CoverageFactor);
        Assert.Equal(2 * Math.Sqrt(15.0 * 15.0 + 3 * (Q * Q / 6 + 1e-12 / 12)), u.ExpandedJ, 12);
    }

    [Fact]
    public void NodeTotalQuantisationIsTwoReadsOnly()
    {
        var meta = Meta("1");
        meta.Series.Add(S("node", "cpu_package", "0"));
        var u = Summarize(meta, R(T0 + Sec, Sec, 5, 0), R(T0 + 2 * Sec, Sec, 5, 0), R(T0 + 3 * Sec, Sec, 5, 0)).Node.Uncertainty;
        Assert.Equal(Q / Math.Sqrt(6), u.RandomJ, 15); // the total telescopes: last read - first read
    }

    [Fact]
    public void SharedNodeAddsAttributionAndInterfacesCombineInQuadrature()
    {
        var meta = Meta("1");
        meta.Series.Add(S("node", "cpu_package", "0"));                             // 0
        meta.Series.Add(S("job:1", "cpu_package", "0"));                            // 1
        meta.Series.Add(S("node", "dram", "0"));                                    // 2
        meta.Series.Add(S("job:1", "dram", "0"));                                   // 3
        meta.Series.Add(S("node", "gpu", "0000:3b:00.0", "nvml-energy-counter", 1e-3)); // 4
        meta.Series.Add(S("job:1", "gpu", "0000:3b:00.0", "nvml-energy-counter", 1e-3)); // 5
        // The job is the only one registered (its file holds the split: node and unattributed), the rest of the CPU
        // time is the system's; a job that shares the node has its share only (SharedNodeQualityTests).
        meta.Series.Add(S("unattributed", "cpu_package", "0"));                     // 6
        meta.Series.Add(S("unattributed", "dram", "0"));                            // 7
        meta.Series.Add(S("unattributed", "gpu", "0000:3b:00.0", "nvml-energy-counter", 1e-3)); // 8
        var recs = new List<SpoolRecord>();
        for (int i = 1; i <= 3; i++)
        {
            long t = T0 + i * Sec;
            recs.Add(R(t, Sec, 200_000_000, 0)); recs.Add(R(t, Sec, 100_000_000, 1)); recs.Add(R(t, Sec, 100_000_000, 6)); // package: job has 1/2
            recs.Add(R(t, Sec, 20_000_000, 2)); recs.Add(R(t, Sec, 5_000_000, 3)); recs.Add(R(t, Sec, 15_000_000, 7));     // dram: job has 1/4
            recs.Add(R(t, Sec, 250_000, 4)); recs.Add(R(t, Sec, 250_000, 5)); recs.Add(R(t, Sec, 0, 8));                   // GPU: allocated whole
        }
        var s = Summarize(meta, recs.ToArray());
        var u = s.Job.Uncertainty;

        Assert.Equal(1065.0, s.Job.TotalEnergyJ, 9);
        // powercap: 5 % of (300 + 15) J, linear across its two counters; NVML: 5 % of 750 J; independent: quadrature.
        Assert.Equal(Math.Sqrt(15.75 * 15.75 + 37.5 * 37.5), u.InterfacesJ, 12);
        // 20 % × share × (1 - share/node), linear over the CPU-side domains; the GPU is not split.
        Assert.Equal(0.2 * 300 * 0.5 + 0.2 * 15 * 0.75, u.AttributionJ, 12); // 30 + 2.25
        double r2 = 2 * 3 * (Q * Q / 6 + 1e-12 / 12) + 3 * (Qn * Qn / 6 + 1e-6 / 12);
        Assert.Equal(Math.Sqrt(r2), u.RandomJ, 15);
        Assert.Equal(2 * Math.Sqrt(15.75 * 15.75 + 37.5 * 37.5 + 32.25 * 32.25 + r2), u.ExpandedJ, 10);
    }

    [Fact]
    public void AtRawStorageTheSplitOfEachPeriodGivesTheFractionNotTheReadsBetween()
    {
        // A job alone at raw storage: the node's reads every 250 ms, the split (share, unattributed) once a second at the
        // period's last read; in the third second another job shared the node (its share only). 20 % × (alone: 1.5 J of a
        // 4 J node over two seconds → 1.5 × (1 − 1.5 / 4); shared: the whole 0.5 J share).
        var meta = Meta("1");
        meta.Series.AddRange(new[] { "node", "job:1", "unattributed" }.Select(c => S(c, "cpu_package", "0"))); // series 0, 1, 2
        var recs = new List<SpoolRecord>();
        for (int ms = 250; ms <= 2000; ms += 250) recs.Add(R(T0 + ms * 1_000_000L, 250_000_000, 500_000, 0));
        recs.Add(R(T0 + Sec, Sec, 500_000, 1)); recs.Add(R(T0 + Sec, Sec, 1_500_000, 2));
        recs.Sort((a, b) => a.WallNs.CompareTo(b.WallNs));
        recs.Add(R(T0 + 2 * Sec, Sec, 1_000_000, 1)); recs.Add(R(T0 + 2 * Sec, Sec, 1_000_000, 2));
        recs.Add(R(T0 + 3 * Sec, Sec, 500_000, 1));
        var s = Summarize(meta, recs.ToArray());
        Assert.Equal(2.0, s.Job.TotalEnergyJ, 12);
        Assert.Equal(0.2 * (1.5 * (1 - 1.5 / 4) + 0.5), s.Job.Uncertainty.AttributionJ, 12);
        Assert.Equal((1L, 1.5, 4.0), (s.SharedRecords, Math.Round(s.SplitJobJ, 12), Math.Round(s.SplitNodeJ, 12)));
    }

    [Fact]
    public void IntegratedNvmlPowerAddsAnIndependentTermPerInterval()
    {
        var meta = Meta("1");
        meta.AttributionMode = "exclusive";
        meta.Series.Add(S("job:1", "gpu", "0000:3b:00.0", "nvml-integrated-power", 1e-3));
        var u = Summarize(meta, R(T0 + Sec, Sec, 100_000, 0), R(T0 + 2 * Sec, Sec, 200_000, 0), R(T0 + 3 * Sec, Sec, 300_000, 0)).Job.Uncertainty;

        Assert.Equal(0.05 * 600, u.InterfacesJ, 12);
        double rel = 0.75 / Math.Sqrt(3); // unseen 75 % of each interval, ±100 % rectangular
        double r2 = rel * rel * (100.0 * 100 + 200.0 * 200 + 300.0 * 300) + 3 * (Qn * Qn / 6 + 1e-6 / 12);
        Assert.Equal(Math.Sqrt(r2), u.RandomJ, 10);
    }

    [Fact]
    public void EstimateUsesTheModelError()
    {
        var meta = Meta("1", model: "generic-per-core");
        meta.AttributionMode = "exclusive";
        meta.Series.Add(S("job:1", "cpu_package", "all", "estimate"));
        var u = Summarize(meta, R(T0 + Sec, Sec, 40_000_000, 0)).Job.Uncertainty;
        Assert.Equal(0.5 * 40, u.InterfacesJ, 12);
    }

    [Fact]
    public void LowerBoundsAndGapsAreOneSided()
    {
        var meta = Meta("1");
        meta.AttributionMode = "exclusive";
        meta.Series.Add(S("job:1", "cpu_package", "0")); // 0
        meta.Series.Add(S("job:1", "dram", "0"));        // 1
        var s = Summarize(meta,
            // package: 100 J, then reads stall (0, 0), then a wrap-ambiguous 50 J spanning back to t=1 s: 3 s at ≤ 1000 W.
            R(T0 + 1 * Sec, Sec, 100_000_000, 0),
            R(T0 + 2 * Sec, Sec, 0, 0),
            R(T0 + 3 * Sec, Sec, 0, 0),
            R(T0 + 4 * Sec, Sec, 50_000_000, 0, SpoolFlags.WrapAmbiguous),
            // dram: 10 W; the records of [2 s, 4 s] are lost; the last row recovers from a failed read: its energy covers its
            // second, so nothing more is missing (it used to add its interval at the mean power: 10 J).
            R(T0 + 1 * Sec, Sec, 10_000_000, 1),
            R(T0 + 2 * Sec, Sec, 10_000_000, 1),
            R(T0 + 5 * Sec, Sec, 10_000_000, 1, SpoolFlags.ReadError));
        var u = s.Job.Uncertainty;
        Assert.Equal((1000.0 * 3 - 50) + 10 * 2, u.MissedJ, 9); // 2950 + 20
        Assert.Equal(0.05 * 180, u.InterfacesJ, 12);
    }

    /// <summary>
    /// A node sampler (aggregated, 1 s) over a generated powercap tree, an exclusive job from 0 to 6 s, package 50 W, DRAM
    /// 10 W; the DRAM counter file is unreadable at the reads of <paramref name="failing"/> (ms). A period in which it was
    /// unreadable has a DRAM row that covers 0 s, and the next good read's row brings its energy with its time (README
    /// "Timing"): nothing is missing. The rows that cover nothing were counted as lost records, 1 s each at the series' mean
    /// power (2 s, 3 s: 20 J of MissedEnergy for energy that is in the total). A counter that stays unreadable from 4 s to
    /// the job's end is lost time: 3 s at 10 W. A recovery at the job's last row (4 s, 5 s unreadable, 6 s good) misses
    /// nothing: its row covers the 3 s since 3 s, but as the series' last row that says a read failed it added its interval
    /// at the mean power again, 30 J of MissedEnergy for energy in the total.
    /// </summary>
    [Theory]
    [InlineData("2000,3000", 60.0, 0.0)]
    [InlineData("4000,5000,6000", 30.0, 30.0)]
    [InlineData("4000,5000", 60.0, 0.0)]
    public void ACounterUnreadableForSomePeriodsMissesOnlyTheTimeNoLaterGoodReadCovers(string failing, double dramJ, double missedJ)
    {
        var (row, rows, db) = ExclusiveJobWithDramUnreadableAt(failing.Split(',').Select(long.Parse).ToHashSet());
        Assert.Equal(ExpectedDramRows(failing.Split(',').Select(long.Parse).ToHashSet()), rows);
        Assert.Equal((300.0, dramJ), (Math.Round(row.Energy.PackageJ, 9), Math.Round(row.Energy.DramJ, 9))); // unchanged by the fix
        Assert.Equal(missedJ, row.Uncertainty.MissedJ, 9);
        Assert.Equal(missedJ, db.Uncertainty.MissedJ, 9);
    }

    /// <summary>
    /// The same job with its DRAM counter unreadable at every read: no row covers time, so the series has no known power and
    /// its time was multiplied by a mean power of 0: MissedEnergy said 0 J for 6 s of a domain never measured. Its time, from
    /// the job's start to its last row, is now bounded as a rejected reading's: 6 s at max_power_w (1000 W), 6000 J, in the
    /// row, the database and what alumet-report prints.
    /// </summary>
    [Fact]
    public void ACounterUnreadableFromItsFirstReadMayMissMaxPowerOverTheJobsTime()
    {
        string text = "", json = "";
        var (row, rows, db) = ExclusiveJobWithDramUnreadableAt([1000, 2000, 3000, 4000, 5000, 6000], path =>
        {
            (text, json) = (Report(path, "-j", "42"), Report(path, "-j", "42", "--json"));
        });
        Assert.Equal(ExpectedDramRows([1000, 2000, 3000, 4000, 5000, 6000]), rows);
        Assert.Equal((300.0, 0.0), (Math.Round(row.Energy.PackageJ, 9), Math.Round(row.Energy.DramJ, 9)));
        Assert.Equal((6000.0, 6000.0), (row.Uncertainty.MissedJ, db.Uncertainty.MissedJ));
        Assert.Contains("MISSED ENERGY: job 42: up to 6 kJ more may have been used", text);
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal(6000.0, doc.RootElement.GetProperty("jobs")[0].GetProperty("total_energy_uncertainty").GetProperty("missed_max_j").GetDouble());
    }

    /// <summary><c>alumet-report</c> as root over the accounting database at <paramref name="db"/>: its output.</summary>
    private static string Report(string db, params string[] args)
    {
        var o = new StringWriter { NewLine = "\n" };
        Assert.Equal(0, Alumet.Hpc.Report.ReportCommand.Run(args, new Alumet.Hpc.Report.ReportEnvironment(0, true, db, o, new StringWriter())));
        return o.ToString();
    }

    /// <summary>
    /// The same job, with a read between two snapshots (3.5 s, or 5.5 s) and the DRAM counter unreadable at the snapshot
    /// after it (4 s, or the end at 6 s): that row covers 0.5 s, from 3 s to its last good read, and the next row, the
    /// recovery, covers the 1.5 s from there. MissedEnergy took the row's 0.5 s as ending at its timestamp, so the 0.5 s
    /// before it as lost (5 J at 10 W), though the recovery's energy holds it; it is now lost only where no later row covers
    /// it: the job's last row (5.5 s to 6 s), 5 J.
    /// </summary>
    [Theory]
    [InlineData(3500L, 4000L, 0.0)]
    [InlineData(5500L, 6000L, 5.0)]
    public void ARowEndingAtItsLastGoodReadBeforeItsTimestampMissesOnlyWhatNoLaterRowCovers(long tick, long failing, double missedJ)
    {
        var (row, rows, db) = ExclusiveJobWithDramUnreadableAt([failing], ticks: [tick]);
        (long, long, long, SpoolFlags) Good(long t, long ms = 1000, SpoolFlags f = SpoolFlags.None) => (t, ms, ms * 10_000, f);
        Assert.Equal(failing == 4000
            ? [Good(1000), Good(2000), Good(3000), Good(4000, 500, SpoolFlags.ReadError), Good(5000, 1500, SpoolFlags.ReadError), Good(6000)]
            : new[] { Good(1000), Good(2000), Good(3000), Good(4000), Good(5000), Good(6000, 500, SpoolFlags.ReadError) }, rows);
        Assert.Equal((300.0, failing == 4000 ? 60.0 : 55.0), (Math.Round(row.Energy.PackageJ, 9), Math.Round(row.Energy.DramJ, 9)));
        Assert.Equal((missedJ, missedJ), (Math.Round(row.Uncertainty.MissedJ, 9), Math.Round(db.Uncertainty.MissedJ, 9)));
    }

    private const long Ms = 1_000_000, Wall0 = 1_700_000_000_000 * Ms;

    /// <summary>
    /// The job of <see cref="ACounterUnreadableForSomePeriodsMissesOnlyTheTimeNoLaterGoodReadCovers"/>: its row as its end
    /// wrote it, its DRAM rows in its Parquet file (end ms, interval ms, µJ, flags), its row in the accounting database.
    /// </summary>
    private static (Alumet.Hpc.Outputs.Accounting.JobRecord Row, List<(long, long, long, SpoolFlags)> Rows, Alumet.Hpc.Outputs.Accounting.JobRecord Db)
        ExclusiveJobWithDramUnreadableAt(HashSet<long> failing, Action<string>? report = null, long[]? ticks = null)
    {
        using var rig = new Alumet.Hpc.Tests.Fakes.NodeRig();
        var cfg = rig.Config(storageMs: 1000);
        rig.AtZero("42");
        using var node = rig.NewNode(cfg);
        var job = Alumet.Hpc.Tests.Fakes.NodeRig.Job("42", exclusive: true);
        node.Register(job, false, 0, Wall0);
        Alumet.Hpc.Jobs.JobFinalizer.Outcome? end = null;
        // Every second a snapshot; at each of ticks a read between them, as the tick thread makes (raw storage, or wraps).
        foreach (long t in Enumerable.Range(1, 6).Select(i => i * 1000L).Concat(ticks ?? []).Order())
        {
            rig.SetCounters((ulong)t * 50_000, 0, (ulong)t * 10_000); // µJ a ms: 50 W, 10 W
            if (failing.Contains(t)) File.WriteAllText(rig.Powercap.PathOf("intel-rapl:0:1", "energy_uj"), "garbage\n");
            if (t % 1000 != 0) node.Buffer.Read(rig.Slot!, t * Ms, Wall0 + t * Ms);
            else if (t < 6000) node.Snapshot(t * Ms, Wall0 + t * Ms);
            else end = node.End(job.Key, true, "", t * Ms, Wall0 + t * Ms);
        }
        node.Close(6000 * Ms, Wall0 + 6000 * Ms);

        var rows = Alumet.Hpc.Tests.Sampling.ReadOrderTests.Series(end!.ParquetPath)[("job:42", "dram:0")]
            .Select(r => ((r.EndUs - Wall0 / 1000) / 1000, r.IntervalUs / 1000, r.Raw, (SpoolFlags)r.Flags)).ToList();
        report?.Invoke(cfg.Paths.Database);
        using var db = Alumet.Hpc.Outputs.Accounting.AccountingDb.OpenReadOnly(cfg.Paths.Database);
        return (end.Record!, rows, Assert.Single(db.GetJob("42")));
    }

    /// <summary>The DRAM rows of 10 W read every second but at <paramref name="failing"/>: 0 s where a read failed, then
    /// the next good read's row with all the time since the last good one (flags=2).</summary>
    private static List<(long, long, long, SpoolFlags)> ExpectedDramRows(HashSet<long> failing)
    {
        var rows = new List<(long, long, long, SpoolFlags)>();
        long lastGood = 0;
        for (long t = 1000; t <= 6000; t += 1000)
        {
            if (failing.Contains(t)) { rows.Add((t, 0, 0, SpoolFlags.ReadError)); continue; }
            rows.Add((t, t - lastGood, (t - lastGood) * 10_000, failing.Contains(t - 1000) ? SpoolFlags.ReadError : SpoolFlags.None));
            lastGood = t;
        }
        return rows;
    }

    [Fact]
    public void ARejectedImplausibleReadMayMissAllOfItsSpan()
    {
        var meta = Meta("1");
        meta.AttributionMode = "exclusive";
        meta.Series.Add(S("job:1", "cpu_package", "0"));
        var u = Summarize(meta,
            R(T0 + 1 * Sec, Sec, 100_000_000, 0),
            R(T0 + 2 * Sec, Sec, 30_000_000, 0, SpoolFlags.Implausible), // a read of this second was rejected: 0 counted for it
            R(T0 + 3 * Sec, Sec, 100_000_000, 0)).Job.Uncertainty;
        Assert.Equal(1000.0 * 1, u.MissedJ, 9); // max_power_w × 1 s, the value of the other reads does not reduce it
    }

    [Fact]
    public void NodesCombineSystematicLinearlyAndRandomInQuadrature()
    {
        var c = EnergyUncertainty.Combine([new(3, 4, 1, 5, 2), new(6, 0, 2, 1, 2)]);
        Assert.Equal(new EnergyUncertainty(9, 4, Math.Sqrt(5), 6, 2), c);
        Assert.Equal(2 * Math.Sqrt(81 + 16 + 5), c.ExpandedJ, 12);
        Assert.False(EnergyUncertainty.Combine([new(3, 4, 1, 5, 2), EnergyUncertainty.None]).Known); // one unknown node: unknown
    }

    [Fact]
    public void EveryInterfaceHasItsOwnAccuracy()
    {
        var m = UncertaintyModel.Default with { RaplRel = 0.01, NvmlEnergyCounterRel = 0.02, NvmlPowerRel = 0.03, EstimateRel = 0.04 };
        // 0.04 is the estimate's value and the fallback for unknown names: no interface of TotalEnergy may fall back
        // (the BMC's wall-side interfaces are never in TotalEnergy: their model has its own fit uncertainty).
        foreach (var i in Enum.GetValues<Alumet.Hpc.Core.MeasurementInterface>()
                     .Where(i => i != Alumet.Hpc.Core.MeasurementInterface.Estimate && !Alumet.Hpc.Core.MeasurementInterfaces.Wire(i).StartsWith("ipmi", StringComparison.Ordinal)))
            Assert.NotEqual(0.04, m.For(Alumet.Hpc.Core.MeasurementInterfaces.Wire(i)).SystematicRel);
        Assert.Equal(0.01, m.For("msr").SystematicRel);
        Assert.Equal(0.01, m.For("perf").SystematicRel);
        Assert.Equal(0.04, m.For("some-new-interface").SystematicRel); // unknown: the largest configured, never a smaller one
    }

    [Theory]
    [InlineData(2.0, "~95 %")]
    [InlineData(1.0, "~68.3 %")]
    [InlineData(3.0, "~99.7 %")]
    public void ConfidenceLabels(double k, string label) => Assert.Equal(label, EnergyUncertainty.ConfidenceLabel(k));

    [Fact]
    public void StepsCarryTheirOwnUncertainty()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Path);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.All(s.Steps, st => Assert.True(st.Summary.Uncertainty.Known));
        Assert.True(s.Job.Uncertainty.ExpandedJ > 0);
    }

    [Fact]
    public void RowsOfTheOldSchemaMigrateAndReadAsUnknownNeverZero()
    {
        using var tmp = new TempDir();
        string path = tmp.Sub("v1.db");
        using (var con = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            cmd.CommandText = Alumet.Hpc.Outputs.Accounting.Schema.Migrations[0].Sql + """
                PRAGMA user_version = 1;
                INSERT INTO jobs (cluster, scheduler, job_id, node, user, uid, energy_package_j, total_energy_j, status)
                VALUES ('lab', 'slurm', '9', 'n1', 'alice', 1001, 50, 50, 'complete');
                """;
            cmd.ExecuteNonQuery();
        }
        using (var db = Alumet.Hpc.Outputs.Accounting.AccountingDb.Open(path))
        {
            var row = Assert.Single(db.GetJob("9"));
            Assert.False(row.Uncertainty.Known);
            Assert.Null(row.Carbon.Co2eG);
        }
        var o = new StringWriter();
        Alumet.Hpc.Report.ReportCommand.Run(["--job", "9", "-o", "JobID,TotalEnergy,TotalEnergyU", "-P"],
            new Alumet.Hpc.Report.ReportEnvironment(0, true, path, o, new StringWriter()));
        Assert.Equal("JobID|TotalEnergy|TotalEnergyU\n9|50|\n", o.ToString());
    }
}
