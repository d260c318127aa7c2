using Alumet.Hpc.Config;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Carbon;
using Alumet.Hpc.Outputs.Uncertainty;
using Alumet.Hpc.Spool;
using Xunit;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>docs/carbon.md: facility energy and CO2e integrated over the job's own intervals, checked by hand.</summary>
public sealed class CarbonTests
{
    private const long Min = 60_000_000_000;
    // 2025-11-13T02:40:00Z: T0 is 02:13:20Z.
    private static readonly long At0240 = T0 + 26 * Min + 40_000_000_000;

    /// <summary>
    /// Job on one package (exclusive), stored every 15 / 10 / 15 min: [02:40, 02:55] 180 kJ (200 W),
    /// [02:55, 03:05] 720 kJ (1200 W, across the 03:00 boundary), [03:05, 03:20] 360 kJ (400 W).
    /// </summary>
    private static SpoolMeta JobAcrossTheHour(string dir)
    {
        var meta = Meta("42");
        meta.AttributionMode = "exclusive";
        meta.Series.Add(S("job:42", "cpu_package", "0"));
        meta.Series.Add(S("job:42", "cpu_cores", "0")); // inside the package: must not be counted twice
        long t1 = At0240 + 15 * Min, t2 = t1 + 10 * Min, t3 = t2 + 15 * Min;
        Write(dir, meta, [
            R(t1, 15 * Min, 180_000_000_000, 0), R(t1, 15 * Min, 1_000_000_000, 1),
            R(t2, 10 * Min, 720_000_000_000, 0), R(t2, 10 * Min, 1_000_000_000, 1),
            R(t3, 15 * Min, 360_000_000_000, 0),
        ]);
        return meta;
    }

    private static string Csv(TempDir tmp, string name, string text)
    {
        string path = tmp.Sub(name);
        File.WriteAllText(path, text);
        return path;
    }

    private static CarbonInputs Inputs(TempDir tmp, bool withPue, double pueRel = 0, double ciRel = 0)
    {
        var cfg = new AlumetConfig();
        // As a grid operator exports it: extra columns, a ';' would work too; the value column is chosen by name.
        cfg.Carbon.IntensityFile = Csv(tmp, "ci.csv", """
            # hourly carbon intensity, UTC
            Datetime (UTC),Zone,Carbon intensity gCO2eq/kWh (direct)
            2025-11-13 01:00:00,FR,100
            2025-11-13 02:00:00,FR,200
            2025-11-13 03:00:00,FR,50
            """);
        cfg.Carbon.IntensityColumn = "Carbon intensity gCO2eq/kWh (direct)";
        cfg.Carbon.IntensityRel = ciRel;
        if (withPue)
        {
            cfg.Facility.PueFile = Csv(tmp, "pue.csv", "time,pue\n2025-11-13T02:00:00Z,1.5\n2025-11-13T03:00:00+00:00,1.2\n");
            cfg.Facility.PueRel = pueRel;
        }
        var inputs = CarbonInputs.FromConfig(cfg);
        Assert.Empty(inputs.Problems);
        return inputs;
    }

    [Fact]
    public void Co2eFollowsTheIntensityOverTheJobsOwnTimeline()
    {
        using var tmp = new TempDir();
        JobAcrossTheHour(tmp.Sub("spool"));
        var s = JobSummary.FromSpool(tmp.Sub("spool"), new SummaryOptions(UncertaintyModel.Default, Inputs(tmp, withPue: false)));

        // 0.05 kWh × 200 + (0.1 kWh × 200 before 03:00 + 0.1 kWh × 50 after) + 0.1 kWh × 50 = 10 + 20 + 5 + 5 g
        Assert.Equal(40.0, s.Carbon.Co2eG!.Value, 9);
        Assert.Null(s.Carbon.FacilityEnergyJ);
        Assert.Contains("no PUE configured", s.Carbon.Basis);
        // Not the job's average power times a mean intensity: 0.35 kWh × mean(200, 50) = 43.75 g.
        Assert.NotEqual(43.75, s.Carbon.Co2eG!.Value, 3);
    }

    [Fact]
    public void PueSeriesGivesFacilityEnergyAndMultipliesTheCo2e()
    {
        using var tmp = new TempDir();
        JobAcrossTheHour(tmp.Sub("spool"));
        var s = JobSummary.FromSpool(tmp.Sub("spool"), new SummaryOptions(UncertaintyModel.Default, Inputs(tmp, withPue: true, 0.1, 0.2)));

        // 180 kJ × 1.5 + 360 kJ × 1.5 + 360 kJ × 1.2 + 360 kJ × 1.2
        Assert.Equal(1_674_000.0, s.Carbon.FacilityEnergyJ!.Value, 6);
        Assert.Equal(10 * 1.5 + 20 * 1.5 + 5 * 1.2 + 5 * 1.2, s.Carbon.Co2eG!.Value, 9); // 57 g

        // Relative uncertainties multiply through: IT energy (5 % RAPL, quantisation), PUE 10 %, intensity 20 %; k = 2.
        double q = 1.0 / 16384;
        double uIt = Math.Sqrt(Math.Pow(0.05 * 1_260_000, 2) + 3 * (q * q / 6 + 1e-12 / 12));
        double relIt = uIt / 1_260_000;
        Assert.Equal(2 * 1_674_000 * Math.Sqrt(relIt * relIt + 0.01), s.Carbon.FacilityEnergyUJ!.Value, 6);
        Assert.Equal(2 * 57 * Math.Sqrt(relIt * relIt + 0.01 + 0.04), s.Carbon.Co2eUG!.Value, 9);
        Assert.Equal("", s.Carbon.Note);
    }

    [Fact]
    public void NothingIsReportedWhenNotConfigured()
    {
        using var tmp = new TempDir();
        JobAcrossTheHour(tmp.Sub("spool"));
        var s = JobSummary.FromSpool(tmp.Sub("spool"), SummaryOptions.FromConfig(new AlumetConfig()));
        Assert.Same(FacilityCarbon.None, s.Carbon);
        Assert.True(s.Job.Uncertainty.Known); // the uncertainty itself is always there
    }

    [Fact]
    public void ConstantsWork()
    {
        using var tmp = new TempDir();
        JobAcrossTheHour(tmp.Sub("spool"));
        var cfg = new AlumetConfig();
        cfg.Facility.Pue = 1.25;
        cfg.Carbon.IntensityGPerKwh = 60;
        var s = JobSummary.FromSpool(tmp.Sub("spool"), new SummaryOptions(UncertaintyModel.Default, CarbonInputs.FromConfig(cfg)));
        Assert.Equal(1_260_000 * 1.25, s.Carbon.FacilityEnergyJ!.Value, 6);
        Assert.Equal(0.35 * 1.25 * 60, s.Carbon.Co2eG!.Value, 9);
        Assert.Contains("leaves out the PUE and carbon intensity uncertainty", s.Carbon.Note);
    }

    [Fact]
    public void AJobOutsideTheSeriesGetsNoCo2eAndASentence()
    {
        using var tmp = new TempDir();
        JobAcrossTheHour(tmp.Sub("spool"));
        var cfg = new AlumetConfig();
        cfg.Carbon.IntensityFile = Csv(tmp, "short.csv", "time,g\n2025-11-13T01:00:00Z,100\n2025-11-13T02:00:00Z,200\n"); // ends 03:00
        var s = JobSummary.FromSpool(tmp.Sub("spool"), new SummaryOptions(UncertaintyModel.Default, CarbonInputs.FromConfig(cfg)));
        Assert.Null(s.Carbon.Co2eG);
        Assert.Contains("does not cover 2025-11-13T03:00:00Z to 2025-11-13T03:05:00Z of the job", s.Carbon.Note);
    }

    [Theory]
    [InlineData("time,g\n2025-11-13T01:00:00Z,100\n2025-11-13T01:00:00Z,90\n", ":3: time 2025-11-13T01:00:00Z is not after the previous row's; sort the rows by time and remove duplicates")]
    [InlineData("time,g\nyesterday,100\n", ":2: 'yesterday' is not a time; use ISO 8601 such as 2026-11-30T14:00:00Z")]
    [InlineData("time,g\n2025-11-13T01:00:00Z,1e9\n", ":2: carbon intensity (gCO2e/kWh) 1000000000 is out of range; use 0..2000")]
    [InlineData("time,g\n2025-11-13T01:00:00Z,12,5\n2025-11-13T02:00:00Z,abc\n", ":3: 'abc' is not a number")]
    [InlineData("time,g\n", ": no data row under the header")]
    [InlineData("", ": empty carbon intensity (gCO2e/kWh) file")]
    public void BadFilesAreOneSentence(string text, string expected)
    {
        using var tmp = new TempDir();
        string path = Csv(tmp, "bad.csv", text);
        var e = Assert.Throws<TimeSeriesFormatException>(() => StepSeries.Load(path, "", 0, 2000, "carbon intensity (gCO2e/kWh)"));
        Assert.StartsWith(path, e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void AMissingColumnNamesTheColumnsThereAre()
    {
        using var tmp = new TempDir();
        var cfg = new AlumetConfig();
        cfg.Carbon.IntensityFile = Csv(tmp, "ci.csv", "Datetime (UTC),Zone,Carbon intensity\n2025-11-13 01:00:00,FR,100\n");
        cfg.Carbon.IntensityColumn = "LCA";
        var inputs = CarbonInputs.FromConfig(cfg);
        Assert.Null(inputs.Intensity);
        Assert.Equal($"{cfg.Carbon.IntensityFile}:1: no value column named 'LCA' after the time column (columns: Datetime (UTC), Zone, Carbon intensity); set intensity_column to one of them",
            Assert.Single(inputs.Problems));
    }

    [Fact]
    public void StepSeriesHoldsEachValueUntilTheNextAndTheLastForOneStep()
    {
        using var tmp = new TempDir();
        var s = StepSeries.Load(Csv(tmp, "s.csv", "t;v\n2025-11-13T01:00:00Z;1.5\n2025-11-13T02:30:00+01:00;1.2\n"), "", 1, 5, "PUE");
        long h1 = (new DateTime(2025, 11, 13, 1, 0, 0, DateTimeKind.Utc) - DateTime.UnixEpoch).Ticks * 100;
        Assert.Equal(1.5, s.ValueAt(h1));
        Assert.Equal(1.5, s.ValueAt(h1 + 30 * Min - 1));
        Assert.Equal(1.2, s.ValueAt(h1 + 30 * Min));        // 02:30+01:00 is 01:30Z
        Assert.Equal(1.2, s.ValueAt(h1 + 60 * Min - 1));    // the last value holds for one step (30 min)
        Assert.True(double.IsNaN(s.ValueAt(h1 + 60 * Min)));
        Assert.True(double.IsNaN(s.ValueAt(h1 - 1)));       // nothing before the first row
        Assert.Equal(h1 + 30 * Min, s.NextChange(h1));
    }
}
