using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources.Rapl;

/// <summary>
/// The DRAM unit of the msr interface on Sapphire Rapids (model 0x8F) and Emerald Rapids (0xCF), through the real sampler
/// binary: their DRAM counter counts in the ESU of MSR_RAPL_POWER_UNIT, like package and cores (Linux dropped the fixed
/// 2^-16 J unit for them from both its RAPL drivers in 6.1: docs/implementation-notes.md); their psys counts 1 J.
/// Haswell-EP to Ice Lake-SP keep the fixed 2^-16 J DRAM unit.
/// </summary>
public class MsrDramUnitProcessTests
{
    private static void WaitFor(Func<bool> condition, string what)
    {
        var end = DateTime.UtcNow.AddSeconds(15);
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException($"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    [Theory]
    [InlineData(0x8F, 3.0)]  // Sapphire Rapids: 3 × 16384 counts of 2^-14 J
    [InlineData(0xCF, 3.0)]  // Emerald Rapids: the same
    [InlineData(0x6A, 0.75)] // Ice Lake-SP: 3 × 16384 counts of the fixed 2^-16 J
    public void DramEnergyFollowsTheModelsUnit(int model, double dramJ)
    {
        using var msr = MsrTree.Intel(1, esu: 14, model: model);
        msr.Set(0, 0x64D, 1); // psys present
        using var install = new TestInstallation(PowercapTree.Standard(1),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20",
            "rapl = \"on\"\nrapl_interface = \"msr\"\nestimate = \"off\"\nnvml = \"off\"",
            $"msr_root = \"{msr.DevRoot}\"\ncpu_root = \"{msr.CpuRoot}\"\ncpuinfo = \"{msr.Cpuinfo}\"");
        var job = new JobIdentity("exec", "test", "301", "root", 0, "node1");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
        Assert.True(launched.Ok, launched.Message);
        WaitFor(() => File.Exists(Path.Combine(job.StateDirectory(install.Config.Paths.StateDir), SpoolWriter.RecordsFile)), "the first records");

        msr.Set(0, 0x611, 1 + 16384).Set(0, 0x619, 1 + 3 * 16384).Set(0, 0x64D, 4); // package 1 J, DRAM 3 × 16384 counts, psys 3 counts
        Thread.Sleep(400);
        Assert.Equal("stopped", SamplerLauncher.StopAndFinalize(job, install.Config).Status);

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("301"));
        Assert.Equal(("msr", JobStatus.Complete), (row.Interfaces, row.Status));
        Assert.Equal((1.0, dramJ), (row.Energy.PackageJ, row.Energy.DramJ));
        Assert.Equal(model is 0x8F or 0xCF ? 3.0 : 3.0 / 16384, row.Energy.PsysJ); // SPR/EMR: 1 J per psys count
    }
}
