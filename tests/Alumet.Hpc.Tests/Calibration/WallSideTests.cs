using System.Text.Json;
using Alumet.Hpc.Calibration;
using Alumet.Hpc.Commands;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Report;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Calibration;

/// <summary>
/// A job finalized on a calibrated node carries its wall-side energy (a MODEL) with its uncertainty into the DB row,
/// the report (column, --json, note) and the Parquet footer; exact numbers from a model whose answer is known by hand.
/// </summary>
public class WallSideTests
{
    /// <summary>
    /// The textbook fit's points (measured 10 × X W + <paramref name="offsetW"/>, wall 10 × Y W) stored for this host, an
    /// installation whose [calibration] dir holds it, and the row of `exec` job <paramref name="jobId"/> (`sleep
    /// <paramref name="seconds"/>`) on it, RAPL counters still (0 J measured).
    /// </summary>
    private static (WallModel Model, TestInstallation Install, JobRecord Row) ExecOnCalibratedNode(TempTree calib, double offsetW, string jobId, string seconds)
    {
        string dir = calib.PathOf("models");
        var model = WallModel.Fit(new (double X, double Y)[] { (0, 1), (1, 2), (2, 4), (3, 5) }
            .Select(p => new CalibrationPoint("s", offsetW + p.X * 10, p.Y * 10)).ToList(), Environment.MachineName,
            new DateTime(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc), "cpu_package+dram", "ipmi-dcmi", 5);
        model.Save(dir);
        var install = new TestInstallation(PowercapTree.Standard(1), extraToml: $"[calibration]\ndir = \"{dir}\"");
        var exec = ExecBinary.Exec(install, jobId, ["sleep", seconds]);
        Assert.True(exec.ExitCode == 0, exec.Stderr);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        return (model, install, Assert.Single(db.GetJob(jobId)));
    }

    [Fact]
    public void ACalibratedNodeGivesTheJobsWallSideEnergyWithItsUncertaintyEverywhere()
    {
        // The textbook fit of WallModelTests: a = 1.4, b = 9 W, VarB = 7, σ = √10 W.
        // RAPL counters stay still: the job's measured energy is 0 J, so wall = b × T and u² = T²·VarB + (σT)² exactly.
        using var calib = new TempTree("calib");
        string id = ExecIds.Next();
        var (model, install, row) = ExecOnCalibratedNode(calib, 0, id, "1");
        using var _ = install;
        double t = row.ElapsedS;
        Assert.Equal(0, row.TotalEnergyJ);
        Assert.Equal(9 * t, row.WallModelEnergyJ, 9);
        Assert.Equal(Math.Sqrt(t * t * 7 + 10 * t * t), row.WallModelUncertaintyJ, 9);
        Assert.Equal(model.Describe(), row.WallModel);
        Assert.StartsWith("MODEL wall W = 1.4 × (cpu_package+dram) W + 9 W", row.WallModel);

        var o = new StringWriter();
        var env = new ReportEnvironment(0, true, install.Config.Paths.Database, o, new StringWriter());
        Assert.Equal(0, ReportCommand.Run(["--job", id, "--json"], env));
        using var json = JsonDocument.Parse(o.ToString());
        var job = json.RootElement.GetProperty("jobs")[0];
        var wall = job.GetProperty("wall_model_energy");
        Assert.Equal(9 * t, wall.GetProperty("value").GetDouble(), 6);
        Assert.Equal(row.WallModelUncertaintyJ, wall.GetProperty("standard_uncertainty").GetDouble(), 6);
        Assert.Equal("model", wall.GetProperty("kind").GetString());
        Assert.Contains(job.GetProperty("notes").EnumerateArray(),
            n => n.GetString()!.StartsWith($"MODEL: job {id} on ", StringComparison.Ordinal));

        o.GetStringBuilder().Clear();
        Assert.Equal(0, ReportCommand.Run(["--job", id, "-o", "JobID,WallModelEnergy", "-P", "--noconvert", "-n"], env));
        Assert.Equal($"{id}|{ReportFields.Raw(9 * t, 6)}±{ReportFields.Raw(row.WallModelUncertaintyJ, 6)}", o.ToString().Split('\n')[0]);

        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = $"SELECT decode(value) FROM parquet_kv_metadata('{row.ParquetPath}') WHERE decode(key) = 'wall_model'";
        Assert.Equal(model.Describe(), cmd.ExecuteScalar() as string);
    }

    [Fact]
    public void AJobOutsideTheCalibratedRangeSaysItsWallSideEnergyIsAnExtrapolation()
    {
        // Calibrated over 100-130 W of measured power (a = 1.4, b = -131 W); the job's node draws 0 W (counters still).
        using var calib = new TempTree("calib");
        string id = ExecIds.Next();
        var (model, install, row) = ExecOnCalibratedNode(calib, 100, id, "0.5");
        using var _ = install;
        const string note = "; EXTRAPOLATED for this job: the node drew 0 W of (cpu_package+dram) on average, outside the 100-130 W the calibration covered (rerun `alumet-hpc calibrate` with loads that reach it)";
        Assert.Equal(model.Describe() + note, row.WallModel);

        var o = new StringWriter();
        Assert.Equal(0, ReportCommand.Run(["--job", id], new ReportEnvironment(0, true, install.Config.Paths.Database, o, new StringWriter())));
        Assert.Contains("EXTRAPOLATED for this job: the node drew 0 W", o.ToString());
    }

    [Fact]
    public void AnUncalibratedNodeHasNoWallModelFields()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1));
        string id = ExecIds.Next();
        Assert.Equal(0, ExecBinary.Exec(install, id, ["true"]).ExitCode);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(id));
        Assert.Equal("", row.WallModel);
        Assert.Equal(0, row.WallModelEnergyJ);
    }
}
