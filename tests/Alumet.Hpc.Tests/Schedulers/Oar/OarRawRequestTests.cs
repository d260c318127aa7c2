using System.Diagnostics;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Commands;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

/// <summary>
/// An OAR job asks for raw storage with the job type <c>alumet=raw</c> (<c>oarsub -t alumet=raw</c>), which bipbip hands
/// the resource manager in the job hash and job_resource_manager_alumet.pl passes as <c>--job-type=alumet=raw</c>;
/// <c>[sampler] job_raw = "deny"</c> ignores it. Through the real binary as the wrapper runs it (init, then clean).
/// </summary>
public class OarRawRequestTests
{
    private const ulong MaxRange = 262_143_328_850;

    internal static int ResourceManager(TestInstallation install, string action, string jobId, params string[] types)
    {
        var psi = new ProcessStartInfo(TestInstallation.Binary()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment.Clear();
        psi.Environment["ALUMET_HPC_CONFIG"] = install.ConfigPath;
        foreach (string a in new[] { "oar", "resource-manager" }.Concat(types.Select(t => $"--job-type={t}"))
                     .Concat([action, jobId, "root", "node1", install.PathOf($"{jobId}_resources")]))
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        Assert.True(p.WaitForExit(60_000));
        return p.ExitCode;
    }

    [Theory]
    [InlineData("allow", 0)]
    [InlineData("deny", 1000)]
    public void TheJobTypeAlumetRawStoresEveryReadUnlessTheAdminDenies(string policy, int storedPeriodMs)
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            $"storage_period_ms = 1000\nflush_interval_ms = 100\nattribution = \"exclusive\"\njob_raw = \"{policy}\"\nlinger_s = 0");
        Assert.Equal(0, ResourceManager(install, "init", "601", "besteffort", "alumet=raw"));
        Thread.Sleep(1500);
        install.Powercap.SetEnergy("intel-rapl:0", 2_000_000);
        Thread.Sleep(1200);
        Assert.Equal(0, ResourceManager(install, "clean", "601"));

        var log = File.ReadAllText(install.PathOf("alumet-hpc.log"));
        Assert.Contains(policy == "allow" ? "oar resource-manager init job 601: node node1, gpus []: job 601 registered (1 job(s) on the node, raw storage)"
            : "oar resource-manager init job 601: node node1, gpus []: job 601 registered (1 job(s) on the node, its raw-storage request ignored ([sampler] job_raw = \"deny\"))", log);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("601"));
        Assert.Equal((JobStatus.Complete, ""), (row.Status, row.Reason));
        Assert.Equal(storedPeriodMs, row.StoragePeriodMs);
        Assert.Equal(2.0, row.Energy.PackageJ, 12); // exact either way
        long records = Convert.ToInt64(ExecBinaryTests.Scalar($"SELECT count(*) FROM read_parquet('{row.ParquetPath}') WHERE consumer = 'node' AND resource_kind = 'cpu_package'"));
        if (policy == "allow") Assert.True(records > 500, $"{records} package records at raw storage");
        else Assert.InRange(records, 2, 4);
    }

    [Fact]
    public void AJobWithoutTheTypeGetsTheConfiguredPeriod()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 1000\nflush_interval_ms = 100\nattribution = \"exclusive\"\njob_raw = \"allow\"\nlinger_s = 0");
        Assert.Equal(0, ResourceManager(install, "init", "602", "besteffort"));
        Thread.Sleep(1200);
        Assert.Equal(0, ResourceManager(install, "clean", "602"));
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("602"));
        Assert.Equal(1000, row.StoragePeriodMs);
        Assert.Contains("job 602 registered (1 job(s) on the node)", File.ReadAllText(install.PathOf("alumet-hpc.log")));
    }
}
