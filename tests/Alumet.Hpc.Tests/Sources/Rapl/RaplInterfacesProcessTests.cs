using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Sources.Rapl;

/// <summary>
/// The real sampler binary (`alumet-hpc sample`, started detached as a prolog does) on one generated node that has
/// both MSR files and powercap files holding consistent counters, two jobs at once: one configured
/// rapl_interface = "msr", one "powercap". Their recorded energies must agree to the counters' quantisation, each
/// must be exactly what its own counters moved (a 32-bit wrap included), and each file and row names its interface.
/// </summary>
public class RaplInterfacesProcessTests
{
    // Linux computes energy_uj = raw × (10^9 / 2^ESU nJ, truncated) / 1000 and max_energy_range_uj = (2^32 - 1) × that:
    // for ESU 14, 61035 nJ and 262143328850 µJ.
    private const ulong UnitNj = 61035;
    private const ulong MaxRange = 0xFFFF_FFFFUL * UnitNj / 1000;

    private static void WaitFor(Func<bool> condition, string what, double seconds = 15)
    {
        var end = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException($"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    private static string Log(TestInstallation i) => File.Exists(i.Config.Paths.LogFile) ? File.ReadAllText(i.Config.Paths.LogFile) : "";

    [Fact]
    public void SameJobThroughMsrAndPowercapGivesTheSameEnergyToQuantisation()
    {
        // Kaby Lake client part (model 0x9E): every domain, DRAM included, counts in 2^-14 J (ESU 14).
        using var msr = MsrTree.Intel(1, esu: 14, model: 0x9E);
        var powercap = new PowercapTree()
            .Zone("intel-rapl:0", "package-0", MaxRange).Zone("intel-rapl:0:0", "core", MaxRange).Zone("intel-rapl:0:1", "dram", MaxRange);
        void Set(ulong pkg, ulong core, ulong dram)
        {
            foreach (var (reg, zone, units) in new[] { (0x611u, "intel-rapl:0", pkg), (0x639u, "intel-rapl:0:0", core), (0x619u, "intel-rapl:0:1", dram) })
            {
                ulong raw = units & 0xFFFF_FFFF;
                msr.Set(0, reg, raw);
                powercap.SetEnergy(zone, raw * UnitNj / 1000);
            }
        }
        Set(0xFFFF_F000, 1000, 1);
        string paths = $"msr_root = \"{msr.DevRoot}\"\ncpu_root = \"{msr.CpuRoot}\"\ncpuinfo = \"{msr.Cpuinfo}\"";
        const string sampler = "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20";
        using var viaMsr = new TestInstallation(powercap, sampler, "rapl = \"on\"\nrapl_interface = \"msr\"\nestimate = \"off\"\nnvml = \"off\"", paths);
        using var viaPowercap = new TestInstallation(powercap, sampler, "rapl = \"on\"\nrapl_interface = \"powercap\"\nestimate = \"off\"\nnvml = \"off\"", paths);
        var jobs = new[] { (viaMsr, new JobIdentity("exec", "test", "201", "root", 0, "node1")), (viaPowercap, new JobIdentity("exec", "test", "202", "root", 0, "node1")) };

        foreach (var (install, job) in jobs)
        {
            var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
            Assert.True(launched.Ok, launched.Message);
        }
        // Each sampler compares the other interface at start: the files are consistent, so they agree, and say so once.
        foreach (var (install, _) in jobs)
            WaitFor(() => Log(install).Contains("RAPL cross-check over"), "the start-up cross-check in " + install.Config.Paths.LogFile);
        // The window is 0.5 s of sleep, measured: a loaded machine oversleeps it, hence the pattern for its length.
        Assert.Matches(@"info: RAPL cross-check over \d+\.\d\d s: msr, powercap agree on 3 domain reading\(s\) within 2 %", Log(viaMsr));
        Assert.Matches(@"info: RAPL cross-check over \d+\.\d\d s: powercap, msr agree on 3 domain reading\(s\) within 2 %", Log(viaPowercap));
        Assert.Single(Log(viaMsr).Split('\n'), l => l.Contains("RAPL cross-check")); // once
        foreach (var (install, job) in jobs)
            WaitFor(() => File.Exists(Path.Combine(job.StateDirectory(install.Config.Paths.StateDir), SpoolWriter.RecordsFile)), "the first records");

        Set(0x1_0000_1000, 1000 + 2 * 16384, 1 + 3 * 16384); // package wraps: +8192 counts = 0.5 J; cores 2 J; DRAM 3 J
        Thread.Sleep(400);
        foreach (var (install, job) in jobs) Assert.Equal("stopped", SamplerLauncher.StopAndFinalize(job, install.Config).Status);

        using var dbMsr = AccountingDb.OpenReadOnly(viaMsr.Config.Paths.Database);
        using var dbPowercap = AccountingDb.OpenReadOnly(viaPowercap.Config.Paths.Database);
        var m = Assert.Single(dbMsr.GetJob("201"));
        var p = Assert.Single(dbPowercap.GetJob("202"));
        Assert.Equal((JobStatus.Complete, JobStatus.Complete), (m.Status, p.Status));
        Assert.Equal(("msr", "powercap"), (m.Interfaces, p.Interfaces));
        // MSR: the counts × 2^-14 J, exactly, across the 32-bit wrap.
        Assert.Equal((0.5, 2.0, 3.0), (m.Energy.PackageJ, m.Energy.CoreJ, m.Energy.DramJ));
        Assert.Equal(0, m.WrapAmbiguous);
        // powercap: the kernel's truncated µJ (61.035 per count); its range ends one count short of the MSR's, so the
        // step over the wrap counts 1 µJ for that count: 249 999 + (262 143 328 851 - 262 143 078 912) µJ.
        Assert.Equal(0.499938, p.Energy.PackageJ, 12);
        Assert.Equal(1.999994, p.Energy.CoreJ, 12);
        Assert.Equal(2.999992, p.Energy.DramJ, 12);
        const double oneCount = 1.0 / 16384 + 2e-6; // a count, plus the µJ truncation at each end
        Assert.InRange(Math.Abs(m.Energy.PackageJ - p.Energy.PackageJ), 0, oneCount);
        Assert.InRange(Math.Abs(m.Energy.CoreJ - p.Energy.CoreJ), 0, oneCount);
        Assert.InRange(Math.Abs(m.Energy.DramJ - p.Energy.DramJ), 0, oneCount);

        // Every Parquet row names the interface.
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        foreach (var (row, iface) in new[] { (m, "msr"), (p, "powercap") })
        {
            using var cmd = duck.CreateCommand();
            cmd.CommandText = $"SELECT string_agg(DISTINCT interface, ','), sum(energy_raw * joules_per_unit) FILTER (WHERE consumer = 'job:{row.JobId}' AND resource_kind = 'cpu_package') FROM read_parquet('{row.ParquetPath}')";
            using var r = cmd.ExecuteReader();
            Assert.True(r.Read());
            Assert.Equal(iface, r.GetString(0));
            Assert.Equal(row.Energy.PackageJ, r.GetDouble(1), 9);
        }
    }

    /// <summary>
    /// The DRAM unit of the msr interface on Sapphire Rapids (model 0x8F) and Emerald Rapids (0xCF), through the real sampler
    /// binary: their DRAM counter counts in the ESU of MSR_RAPL_POWER_UNIT, like package and cores (Linux dropped the fixed
    /// 2^-16 J unit for them from both its RAPL drivers in 6.1: docs/implementation-notes.md); their psys counts 1 J.
    /// Haswell-EP to Ice Lake-SP keep the fixed 2^-16 J DRAM unit.
    /// </summary>
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
