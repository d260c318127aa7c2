using Alumet.Hpc.Calibration;

namespace Alumet.Hpc.Tests.Calibration;

/// <summary>The least-squares fit and the job wall energy with its uncertainty, on inputs whose answer is known by hand.</summary>
public class WallModelTests
{
    private static readonly DateTime Date = new(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc);

    [Fact]
    public void ExactLineIsRecoveredWithZeroResidual()
    {
        var pts = new[] { 40.0, 80, 120, 160, 200 }.Select(x => new CalibrationPoint("s", x, 1.25 * x + 80)).ToList();
        var m = WallModel.Fit(pts, "n1", Date, "cpu_package+dram", "ipmi-dcmi", 5);
        Assert.Equal(1.25, m.A, 12);
        Assert.Equal(80, m.B, 10);
        Assert.Equal(1, m.R2, 12);
        Assert.Equal(0, m.ResidualSigmaW, 9);
        Assert.Equal(40, m.MinMeasuredW);
        Assert.Equal(200, m.MaxMeasuredW);
        // A job of 1000 J measured over 100 s holding the whole node: 1.25 × 1000 + 80 × 100 = 9250 J, no uncertainty.
        var (e, u) = m.JobWallEnergy(1000, 100, 1);
        Assert.Equal(9250, e, 9);
        Assert.Equal(0, u, 9);
        // Half of a shared node: b is charged by the job's fraction of the node's measured energy.
        Assert.Equal(1.25 * 1000 + 80 * 100 * 0.5, m.JobWallEnergy(1000, 100, 0.5).EnergyJ, 9);
    }

    [Fact]
    public void NoisyLineGivesTheTextbookCovarianceAndResidual()
    {
        // x = 0, 1, 2, 3; y = 1, 2, 4, 5, both × 10 W. By hand (unscaled): x̄ = 1.5, ȳ = 3, Sxx = 5, Sxy = 7, a = 1.4,
        // b = 0.9, residuals 0.1, -0.3, 0.3, -0.1, SSres = 0.2, s² = 0.1, Syy = 10. Scaled by 10: a = 1.4, b = 9,
        // s² = 10, Sxx = 500, so VarA = 10/500, VarB = 10 (1/4 + 15²/500) = 7, Cov = -15·10/500 = -0.3, R² = 0.98.
        var pts = new (double X, double Y)[] { (0, 1), (1, 2), (2, 4), (3, 5) }.Select(p => new CalibrationPoint("s", p.X * 10, p.Y * 10)).ToList();
        var m = WallModel.Fit(pts, "n1", Date, "cpu_package", "ipmi-dcmi", 5);
        Assert.Equal(1.4, m.A, 12);
        Assert.Equal(9, m.B, 10);
        Assert.Equal(Math.Sqrt(10), m.ResidualSigmaW, 10);
        Assert.Equal(0.02, m.VarA, 12);
        Assert.Equal(7, m.VarB, 10);
        Assert.Equal(-0.3, m.CovAB, 12);
        Assert.Equal(0.98, m.R2, 12);
        // E = 100 J over T = 10 s, whole node: 1.4·100 + 9·10 = 230 J; u² = 100²·0.02 + 10²·7 + 2·100·10·(-0.3) + (√10·10)²
        // = 200 + 700 - 600 + 1000 = 1300.
        var (e, u) = m.JobWallEnergy(100, 10, 1);
        Assert.Equal(230, e, 9);
        Assert.Equal(Math.Sqrt(1300), u, 9);
    }

    [Fact]
    public void ErrorsAreSentences()
    {
        var two = new[] { new CalibrationPoint("s", 10, 20), new CalibrationPoint("s", 50, 70) };
        Assert.StartsWith("too few steady points (2", Assert.Throws<CalibrationException>(() => WallModel.Fit(two, "n", Date, "", "", 5)).Message);
        var flat = Enumerable.Range(0, 5).Select(i => new CalibrationPoint("s", 100 + i * 0.5, 200)).ToList();
        Assert.StartsWith("the load ladder covered only 100-102 W", Assert.Throws<CalibrationException>(() => WallModel.Fit(flat, "n", Date, "", "", 5)).Message);
        var noise = new[] { (10.0, 300.0), (20, 100), (30, 280), (40, 90), (50, 310) }.Select(p => new CalibrationPoint("s", p.Item1, p.Item2)).ToList();
        Assert.StartsWith("poor fit: R² = ", Assert.Throws<CalibrationException>(() => WallModel.Fit(noise, "n", Date, "", "", 5)).Message);
    }

    [Fact]
    public void SavedModelRoundTripsAndAPlantableFileIsIgnored()
    {
        using var dir = new Fakes.TempTree("calib");
        var m = WallModel.Fit(new[] { 40.0, 80, 120 }.Select(x => new CalibrationPoint("s", x, 2 * x + 50)).ToList(), "n1", Date, "cpu_package", "ipmi-dcmi", 5);
        File.SetUnixFileMode(dir.Root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        m.Save(dir.Root);
        var back = WallModel.TryLoad(dir.Root, "n1", out string problem);
        Assert.True(back is not null, problem);
        Assert.Equal(m, back);
        File.SetUnixFileMode(WallModel.PathFor(dir.Root, "n1"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite);
        Assert.Null(WallModel.TryLoad(dir.Root, "n1", out problem));
        Assert.Contains("writable by group or others", problem);
        Assert.Null(WallModel.TryLoad(dir.Root, "n2", out problem));
        Assert.Contains("run `alumet-hpc calibrate`", problem);
    }
}
