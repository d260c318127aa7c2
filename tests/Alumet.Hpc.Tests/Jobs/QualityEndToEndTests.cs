using System.Text.Json;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Report;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>
/// Uncertainty and CO2e through the real path: the sampler reads a generated powercap tree and writes its spool, the
/// finalizer writes Parquet + the DB row, alumet-report prints them (docs/uncertainty.md, docs/carbon.md).
/// </summary>
public class QualityEndToEndTests
{
    private const long Sec = 1_000_000_000;
    private static readonly long Wall0 = (new DateTime(2026, 11, 30, 13, 59, 59, DateTimeKind.Utc) - DateTime.UnixEpoch).Ticks * 100;

    /// <summary>One socket, exclusive; the package uses 100, 200, 300 J over three 1 s periods from 13:59:59Z (across 14:00).</summary>
    private static (TempTree Dir, AlumetConfig Cfg, string State) Job()
    {
        var dir = new TempTree("quality");
        using var powercap = PowercapTree.Standard(1);
        var cfg = new AlumetConfig();
        cfg.Paths.DataDir = dir.PathOf("data");
        cfg.Paths.Database = dir.PathOf("accounting.db");
        cfg.Facility.Pue = 1.5;
        cfg.Carbon.IntensityFile = dir.Write("ci.csv", "datetime,gco2_per_kwh\n2026-11-30T13:00:00Z,100\n2026-11-30T14:00:00Z,300\n");
        cfg.Paths.StateDir = dir.PathOf("state");
        cfg.Paths.LogFile = dir.PathOf("log");
        ulong uj = 1_000_000;
        powercap.SetEnergy("intel-rapl:0", uj);
        // The node sampler's real entry points: it reads the counters at its start, each Snapshot closes a period.
        var slot = new SourceSlot(new RaplSource(PowercapDiscovery.Discover(powercap.Root).Zones), 1000, false, 1000);
        var job = new JobIdentity("exec", "c", "7", "root", 0, "n1");
        using (var node = new NodeSampler(cfg, new SourceSet([slot], "test", "", []), 0))
        {
            node.Register(new JobRegistration(job, null, null, Exclusive: true, Raw: false, Wall0), recovered: false, 0);
            for (int i = 1; i <= 3; i++)
            {
                uj += (ulong)i * 100_000_000; // 100, 200, 300 J
                powercap.SetEnergy("intel-rapl:0", uj);
                node.Snapshot(i * Sec, Wall0 + i * Sec);
            }
            node.Close(3 * Sec, Wall0 + 3 * Sec);
        }
        slot.Source.Dispose();
        string state = job.StateDirectory(cfg.Paths.StateDir);
        return (dir, cfg, state);
    }

    private const double Q = 1.0 / 16384; // RAPL quantum, 2^-14 J

    // By hand (docs/uncertainty.md, default model): RAPL 5 % of 600 J; the job's package and dram series have 3 records
    // each (3 periods; the node sampler's closing snapshot, at the last one's instant, closes an empty period: no row),
    // each with q²/6 + (1 µJ)²/12; exclusive: no attribution term; k = 2.
    private static readonly double StandardU = Math.Sqrt(30.0 * 30.0 + 6 * (Q * Q / 6 + 1e-12 / 12));
    // docs/carbon.md: [13:59:59, 14:00:00] 100 J at 100 g/kWh, then 200 J and 300 J at 300 g/kWh, all × PUE 1.5
    // (effective intensity: (100 × 100 + 500 × 300) / 600 = 266.7 g/kWh, weighted by the job's own energy).
    private const double Co2eG = 1.5 * (100.0 * 100 + 500.0 * 300) / 3.6e6;

    [Fact]
    public void FinalizedRowReportAndParquetCarryUncertaintyFacilityEnergyAndCo2e()
    {
        var (dir, cfg, state) = Job();
        using var _ = dir;
        var outcome = JobFinalizer.Finalize(state, cfg, complete: true, "");

        var rec = outcome.Record!;
        Assert.Equal(600.0, rec.TotalEnergyJ, 9);
        Assert.Equal(30.0, rec.Uncertainty.InterfacesJ, 12);
        Assert.Equal(0, rec.Uncertainty.AttributionJ);
        Assert.Equal(2 * StandardU, rec.Uncertainty.ExpandedJ, 12);
        Assert.Equal(900.0, rec.Carbon.FacilityEnergyJ!.Value, 9);
        Assert.Equal(Co2eG, rec.Carbon.Co2eG!.Value, 12);
        Assert.Equal(2 * Co2eG * StandardU / 600, rec.Carbon.Co2eUG!.Value, 12); // PUE and intensity uncertainty not given

        // The DB row, read back by alumet-report.
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, ReportCommand.Run(["--job", "7", "--json"], new ReportEnvironment(0, true, cfg.Paths.Database, o, e)));
        using var doc = JsonDocument.Parse(o.ToString());
        var line = doc.RootElement.GetProperty("jobs")[0];
        var carbon = line.GetProperty("carbon");
        var u = line.GetProperty("total_energy_uncertainty");
        Assert.Equal(2 * StandardU, u.GetProperty("expanded_j").GetDouble(), 12);
        Assert.Equal(2, u.GetProperty("coverage_factor").GetDouble());
        Assert.Equal("~95 %", u.GetProperty("confidence").GetString());
        Assert.Equal(900.0, carbon.GetProperty("facility_energy_j").GetDouble(), 9);
        Assert.Equal(Co2eG, carbon.GetProperty("co2e_g").GetDouble(), 12);
        Assert.Contains("PUE(t) [constant 1.5] x intensity(t) [file ", carbon.GetProperty("basis").GetString());
        Assert.Contains("leaves out the PUE and carbon intensity uncertainty", carbon.GetProperty("note").GetString());

        var table = new StringWriter();
        ReportCommand.Run(["--job", "7", "-o", "JobID,TotalEnergy,TotalEnergyU,FacilityEnergy,PUE,CO2e,CarbonIntensity", "-P", "--noconvert", "-n"],
            new ReportEnvironment(0, true, cfg.Paths.Database, table, e));
        Assert.Equal($"7|600|{Math.Round(2 * StandardU, 6).ToString(System.Globalization.CultureInfo.InvariantCulture)}|900|1.50|0.067|266.7\n", table.ToString());

        // The Parquet footer says the same.
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = $"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{outcome.ParquetPath.Replace("'", "''")}')";
        var kv = new Dictionary<string, string>();
        using (var rd = cmd.ExecuteReader()) while (rd.Read()) kv[rd.GetString(0)] = rd.GetString(1);
        Assert.Equal(600.0, double.Parse(kv["total_energy_j"], System.Globalization.CultureInfo.InvariantCulture), 9);
        Assert.Equal(2 * StandardU, double.Parse(kv["total_energy_u_j"], System.Globalization.CultureInfo.InvariantCulture), 12);
        Assert.Equal("2", kv["uncertainty_coverage_factor"]);
        Assert.Equal("docs/uncertainty.md", kv["uncertainty_method"]);
        Assert.Equal(Co2eG, double.Parse(kv["co2e_g"], System.Globalization.CultureInfo.InvariantCulture), 12);
    }

    [Fact]
    public void ABadIntensityFileLeavesCo2eOutAndSaysWhyWithoutFailingTheJob()
    {
        var (dir, cfg, state) = Job();
        using var _ = dir;
        cfg.Carbon.IntensityFile = dir.Write("bad.csv", "datetime,g\n2026-11-30T14:00:00Z,abc\n");
        var outcome = JobFinalizer.Finalize(state, cfg, complete: true, "");
        Assert.Equal(JobStatus.Complete, outcome.Status);
        Assert.Null(outcome.Record!.Carbon.Co2eG);
        Assert.Equal(900.0, outcome.Record!.Carbon.FacilityEnergyJ!.Value, 9);
        Assert.StartsWith($"{cfg.Carbon.IntensityFile}:2: 'abc' is not a number", outcome.Record!.Carbon.Note);

        var o = new StringWriter();
        ReportCommand.Run(["--job", "7"], new ReportEnvironment(0, true, cfg.Paths.Database, o, new StringWriter()));
        Assert.Contains($"CARBON: job 7 on n1: {cfg.Carbon.IntensityFile}:2: 'abc' is not a number", o.ToString());
    }
}
