using Alumet.Hpc.Calibration;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>
/// What qualifies a job's total on a node it shared, through the node sampler's real path (Register, Snapshot, End and
/// the finalization's row): the file of a job that shares the node holds its own share only (README "Who sees what"),
/// so its part of the node's energy is known for the periods it was alone (or exclusive) and unknown for the others.
/// The attribution term of its uncertainty (docs/uncertainty.md, section 6) takes 1 − f at its bound there, and the
/// wall-side model (README "Wall-side energy"), which needs f for the idle power b, is not given rather than guessed.
/// </summary>
public class SharedNodeQualityTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Wall0 = 1_764_590_400_000_000_000; // 2025-12-01T12:00:00Z
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    /// <summary>A node sampler with a calibration model for node1 (the textbook fit of WallModelTests: a = 1.4, b = 9 W),
    /// counters, /proc/stat and job 42's cgroup at 0, and job 42 registered at 0.</summary>
    private NodeSampler NodeWithJob42()
    {
        var cfg = _rig.Config();
        cfg.Calibration.Dir = _rig.Install.PathOf("calibration");
        WallModel.Fit(new (double X, double Y)[] { (0, 1), (1, 2), (2, 4), (3, 5) }.Select(p => new CalibrationPoint("s", p.X * 10, p.Y * 10)).ToList(),
            "node1", new DateTime(2026, 11, 30, 12, 0, 0, DateTimeKind.Utc), "cpu_package+dram", "ipmi-dcmi", 5).Save(cfg.Calibration.Dir);
        _rig.SetCounters(0, 0, 0);
        _rig.Proc.SetStat(0, 0);
        _rig.SetJobCpu("42", 0);
        var node = _rig.NewNode(cfg);
        node.Register(NodeRig.Job("42"), false, 0, Wall0);
        return node;
    }

    /// <summary>Second <paramref name="s"/> ends: the counters (µJ), the node's busy ticks and the jobs' CPU time (ns) so far, then the snapshot.</summary>
    private void Second(NodeSampler node, long s, ulong packageUj, ulong dramUj, ulong busyTicks, params (string Job, ulong Ns)[] cpu)
    {
        _rig.SetCounters(packageUj, 0, dramUj);
        _rig.Proc.SetStat(busyTicks, 0);
        foreach (var (job, ns) in cpu) _rig.SetJobCpu(job, ns);
        node.Snapshot(s * 1000 * Ms, Wall0 + s * 1000 * Ms);
    }

    [Fact]
    public void AJobThatSharedTheNodeCarriesItsAttributionUncertaintyAndNoGuessedWallModel()
    {
        using var node = NodeWithJob42();
        // Second 1, job 42 alone: package 1 J and DRAM 0.2 J, the node busy 1 s, job 42 0.5 s of it: half each.
        Second(node, 1, 1_000_000, 200_000, 100, ("42", 500_000_000));
        // Second 2, job 43 joins: package 0.9 J, DRAM 0.3 J; job 42 0.6 s, job 43 0.3 s of a 1 s busy node.
        _rig.SetJobCpu("43", 0);
        node.Register(NodeRig.Job("43"), false, 1000 * Ms, Wall0 + 1000 * Ms);
        Second(node, 2, 1_900_000, 500_000, 200, ("42", 1_100_000_000), ("43", 300_000_000));
        var r42 = node.End(NodeRig.Job("42").Key, true, "", 2000 * Ms, Wall0 + 2000 * Ms)!.Record!;
        var r43 = node.End(NodeRig.Job("43").Key, true, "", 2000 * Ms, Wall0 + 2000 * Ms)!.Record!;
        node.Close(2000 * Ms, Wall0 + 2000 * Ms);

        Assert.Equal(1.04, r42.Energy.PackageJ, 12); // 0.5 + 0.54 J
        Assert.Equal(0.28, r42.Energy.DramJ, 12);    // 0.1 + 0.18 J
        Assert.Equal(0.27, r43.Energy.PackageJ, 12);
        Assert.Equal(0.09, r43.Energy.DramJ, 12);
        // 20 % × (alone: share × (1 − share / node) = 0.5 × 0.5 + 0.1 × 0.5; shared: the whole share, 0.54 + 0.18).
        Assert.Equal(0.2 * (0.25 + 0.05 + 0.54 + 0.18), r42.Uncertainty.AttributionJ, 12);
        Assert.Equal(0.2 * (0.27 + 0.09), r43.Uncertainty.AttributionJ, 12);
        // f is not known for the shared second: no wall-side energy for either job (main gave job 42 a × 1.32 J + b × 2 s,
        // f clamped to 1, and job 43 a × 0.36 J, f = 0).
        Assert.Equal((0.0, ""), (r42.WallModelEnergyJ, r42.WallModel));
        Assert.Equal((0.0, ""), (r43.WallModelEnergyJ, r43.WallModel));
    }

    [Fact]
    public void AJobAloneOnTheNodeIsChargedItsPartOfTheIdlePower()
    {
        using var node = NodeWithJob42();
        for (ulong s = 1; s <= 2; s++) Second(node, (long)s, s * 1_000_000, 0, 100 * s, ("42", s * 500_000_000)); // package 1 J a second, the job half of the busy node
        var r = node.End(NodeRig.Job("42").Key, true, "", 2000 * Ms, Wall0 + 2000 * Ms)!.Record!;
        node.Close(2000 * Ms, Wall0 + 2000 * Ms);

        Assert.Equal(1.0, r.TotalEnergyJ, 12);
        Assert.Equal(0.2 * 1.0 * 0.5, r.Uncertainty.AttributionJ, 12);
        // a × 1 J + b × 2 s × f, f = 1 J / 2 J.
        Assert.Equal(1.4 * 1.0 + 9 * 2 * 0.5, r.WallModelEnergyJ, 9);
    }
}
