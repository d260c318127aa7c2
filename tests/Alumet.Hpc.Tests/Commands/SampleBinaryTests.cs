using System.Diagnostics;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// <c>alumet-hpc sample</c> through the native binaries (ALUMET_HPC_BIN, alumet-hpc-sampler beside it): the full binary
/// checks the arguments and replaces itself with <c>alumet-hpc-sampler sample</c> (same pid: the SIGTERM of whoever
/// started it ends the job), whose rows come from <c>alumet-hpc finalize-job</c> children (Jobs/OneJobSampler.cs).
/// </summary>
public class SampleBinaryTests
{
    private const ulong MaxRange = 262_143_328_850; // a real max_energy_range_uj

    private static TestInstallation NewInstall(PowercapTree tree, string sourcesToml = "rapl = \"on\"\nestimate = \"off\"\nnvml = \"off\"") =>
        new(tree, "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100", sourcesToml);

    private static string Sampler()
    {
        string sampler = Path.Combine(Path.GetDirectoryName(TestInstallation.Binary())!, SamplerLauncher.SamplerProgram);
        Assert.True(File.Exists(sampler), $"{sampler} missing: run make publish");
        return sampler;
    }

    private static Process Start(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        return p;
    }

    private static (int ExitCode, string Stdout, string Stderr) Wait(Process p)
    {
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException("the sampler did not exit within 60 s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string[] SampleArgs(TestInstallation install, string jobId) =>
        ["sample", "--config", install.ConfigPath, "--scheduler", "exec", "--job-id", jobId, "--user", "root", "--uid", "0", "--node", "node1", "--exclusive"];

    [Fact]
    public void SampleRunsInAlumetHpcSamplerUnderThePidItWasStartedWithAndSigtermWritesTheExactEnergy()
    {
        using var install = NewInstall(PowercapTree.Standard(2, MaxRange));
        install.Powercap.SetEnergy("intel-rapl:0", MaxRange - 1_000);
        install.Powercap.SetEnergy("intel-rapl:1:1", 7);
        string state = Path.Combine(install.Config.Paths.StateDir, "exec", "501");
        using var p = Start(TestInstallation.Binary(), SampleArgs(install, "501"));
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:501", "cpu_package").Count > 0, "the first flushed records (counters primed)");

        // The pid the caller started now runs the lean binary: the full one is no longer mapped.
        Assert.Equal(Sampler(), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);
        Assert.Equal(OneJobSampler.Verb, File.ReadAllText($"/proc/{p.Id}/cmdline").Split('\0')[1]);

        install.Powercap.SetEnergy("intel-rapl:0", 4_000);      // wrapped: 1_001 + 4_000 µJ
        install.Powercap.SetEnergy("intel-rapl:1:1", 2_000_007); // dram of socket 1: 2 J
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:501", "dram").Sum(r => r.Value) == 2_000_000
                                      && ExecBinaryTests.Flushed(state, "job:501", "cpu_package").Sum(r => r.Value) == 5_001, "the moves in the spool");
        Alumet.Hpc.Native.Libc.kill(p.Id, 15);
        var (rc, _, stderr) = Wait(p);
        Assert.True(rc == 0, stderr);

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("501"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(0.005001, row.Energy.PackageJ, 12);
        Assert.Equal(2.0, row.Energy.DramJ, 12);
        Assert.Equal(2.005001, row.TotalEnergyJ, 12);
        Assert.Equal(2.005001, Convert.ToDouble(ExecBinaryTests.Scalar(
            $"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{row.ParquetPath}') WHERE consumer = 'job:501' AND resource_kind IN ('cpu_package','dram','gpu')")), 9);
        string[] log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        Assert.Single(log, l => l.Contains("job 501: sampling ("));
        Assert.Single(log, l => l.Contains("job 501: finalized complete"));
    }

    [Fact]
    public void SigintEndsTheJobAsSigtermDoes()
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string state = Path.Combine(install.Config.Paths.StateDir, "exec", "506");
        using var p = Start(TestInstallation.Binary(), SampleArgs(install, "506"));
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:506", "cpu_package").Count > 0, "the first flushed records (counters primed)");
        install.Powercap.SetEnergy("intel-rapl:0", 4_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:506", "cpu_package").Sum(r => r.Value) == 4_000_000, "the 4 J in the spool");
        Alumet.Hpc.Native.Libc.kill(p.Id, 2);
        var (rc, _, stderr) = Wait(p);
        Assert.True(rc == 0, stderr);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("506"));
        Assert.Equal((JobStatus.Complete, 4.0), (row.Status, row.TotalEnergyJ));
    }

    [Theory]
    [InlineData("--job-id", "x", "--job-id \"x\" is not a numeric job id")]
    [InlineData("--sluid", "a b", "--sluid \"a b\" is not a SLUID")] // the registration carries it: the lean binary would refuse it
    public void ABadArgumentToSampleIsOneSentenceAndExitTwo(string option, string value, string error)
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string[] args = SampleArgs(install, "507");
        int at = Array.IndexOf(args, option);
        args = at >= 0 ? [.. args[..(at + 1)], value, .. args[(at + 2)..]] : [.. args, option, value];
        var (rc, stdout, stderr) = Wait(Start(TestInstallation.Binary(), args));
        Assert.Equal((2, "", $"alumet-hpc: sample: {error}\n"), (rc, stdout, stderr));
        Assert.False(Directory.Exists(install.Config.Paths.StateDir));
    }

    [Fact]
    public void DetachedSampleLeavesTheCallersSessionInTheLeanBinaryAndSigtermStillEndsIt()
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string state = Path.Combine(install.Config.Paths.StateDir, "exec", "504");
        using var p = Start(TestInstallation.Binary(), [.. SampleArgs(install, "504"), "--detach"]);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:504", "cpu_package").Count > 0, "the first flushed records (counters primed)");
        Assert.Equal(Sampler(), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);
        string stat = File.ReadAllText($"/proc/{p.Id}/stat");
        Assert.Equal(p.Id.ToString(), stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[3]); // session id: its own (setsid)

        install.Powercap.SetEnergy("intel-rapl:0", 3_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:504", "cpu_package").Sum(r => r.Value) == 3_000_000, "the 3 J in the spool");
        Alumet.Hpc.Native.Libc.kill(p.Id, 15);
        var (rc, stdout, stderr) = Wait(p);
        Assert.Equal((0, "", ""), (rc, stdout, stderr)); // stdio went to /dev/null

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("504"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(3.0, row.TotalEnergyJ, 12);
    }

    [Theory]
    [InlineData(false, null)]
    [InlineData(true, "Permission denied")]
    public void WithoutARunnableAlumetHpcSamplerBesideItSampleSamplesInAlumetHpc(bool samplerNotExecutable, string? why)
    {
        // Only alumet-hpc installed (or an alumet-hpc-sampler that execve refuses): the job is still measured, by the
        // full binary itself, and a refused execve is logged once.
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string bin = install.PathOf("bin");
        Directory.CreateDirectory(bin);
        string from = Path.GetDirectoryName(TestInstallation.Binary())!;
        foreach (string f in new[] { "alumet-hpc", "libe_sqlite3.so" }) File.Copy(Path.Combine(from, f), Path.Combine(bin, f));
        File.SetUnixFileMode(Path.Combine(bin, "alumet-hpc"), (UnixFileMode)0b111_101_101);
        if (samplerNotExecutable) File.Copy(Sampler(), Path.Combine(bin, SamplerLauncher.SamplerProgram));
        if (samplerNotExecutable) File.SetUnixFileMode(Path.Combine(bin, SamplerLauncher.SamplerProgram), (UnixFileMode)0b110_100_100);
        string state = Path.Combine(install.Config.Paths.StateDir, "exec", "505");
        using var p = Start(Path.Combine(bin, "alumet-hpc"), SampleArgs(install, "505"));
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:505", "cpu_package").Count > 0, "the first flushed records (counters primed)");
        Assert.Equal(Path.Combine(bin, "alumet-hpc"), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);

        install.Powercap.SetEnergy("intel-rapl:0", 1_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:505", "cpu_package").Sum(r => r.Value) == 1_000_000, "the 1 J in the spool");
        Alumet.Hpc.Native.Libc.kill(p.Id, 15);
        var (rc, _, stderr) = Wait(p);
        Assert.True(rc == 0, stderr);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        Assert.Equal(1.0, Assert.Single(db.GetJob("505")).TotalEnergyJ, 12);
        string[] log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        if (why is null) Assert.DoesNotContain(log, l => l.Contains("sampling in alumet-hpc"));
        else Assert.Single(log, l => l.Contains($"job 505: could not run {Path.Combine(bin, SamplerLauncher.SamplerProgram)}: {why}; sampling in alumet-hpc"));
    }

    [Fact]
    public void WithNoEnergySourceTheLeanSamplerWritesTheNotMeasuredRowWithTheTrueReason()
    {
        using var install = NewInstall(new PowercapTree(), "rapl = \"auto\"\nestimate = \"off\"\nnvml = \"off\"");
        var job = new JobIdentity("exec", "local", "502", "root", 0, "node1", "20261201T150000000Z");
        using var p = Start(Sampler(), "sample", "--config", install.ConfigPath, OneJobSampler.Registration(job, null, null, exclusive: true).ToLine());
        var (rc, _, stderr) = Wait(p);
        Assert.True(rc == 0, stderr);

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("502"));
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        Assert.StartsWith("no energy source on this node: ", row.Reason);
        Assert.Equal("20261201T150000000Z", row.RunId);
    }

    [Fact]
    public void ASamplerThatFailsToStartExitsOneAndItsNotMeasuredRowSaysWhy()
    {
        using var install = NewInstall(new PowercapTree()); // rapl = "on" over an empty tree
        var (rc, _, stderr) = Wait(Start(TestInstallation.Binary(), SampleArgs(install, "503")));
        Assert.True(rc == 1, stderr);

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("503"));
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        Assert.StartsWith("sampler failed to start: ", row.Reason);
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.Contains("job 503: sampler failed: "));
    }

    [Theory]
    [InlineData("scheduler=exec cluster=local job=12x user=root uid=0 node=node1 exclusive=1 raw=0 start=0 run=r1", "job \"12x\" is not a job id")]
    [InlineData("scheduler=exec cluster=local job=12 user=root uid=0 node=node1 exclusive=1 raw=1 start=0 run=r1",
                "registration token \"raw=1\" is not one that alumet-hpc sample writes")]
    [InlineData("scheduler=exec cluster=local job=12 user=root uid=0 node=node1 exclusive=1 raw=0 start=0 run=r1 cgroup=/x",
                "registration token \"cgroup=/x\" is not one that alumet-hpc sample writes")]
    [InlineData("scheduler=exec cluster=local job=12 user=root uid=0 node=node1 exclusive=1 raw=0 start=0",
                "the registration has no run id (alumet-hpc sample always writes one)")]
    public void ABadRegistrationToTheLeanVerbIsOneSentenceAndExitTwo(string line, string error)
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        var (rc, stdout, stderr) = Wait(Start(Sampler(), "sample", "--config", install.ConfigPath, line));
        Assert.Equal(2, rc);
        Assert.Equal("", stdout);
        Assert.Equal($"alumet-hpc-sampler: sample: {error}\n", stderr);
        Assert.False(Directory.Exists(install.Config.Paths.StateDir));
    }
}
