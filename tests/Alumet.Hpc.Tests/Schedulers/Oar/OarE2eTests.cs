using System.Diagnostics;
using Xunit;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

/// <summary>
/// The real-OAR end-to-end checks (tests/e2e/oar/run-e2e.sh, a bash driver: OAR is driven through its CLI, jobs are
/// submitted with su, the DB is read with sqlite3). Runs when ALUMET_E2E_OAR=1; then a lab that is down FAILS.
/// Start the lab first: <c>tests/e2e/oar/oar-lab.sh start</c> (root).
/// </summary>
[Collection(SchedulerE2ECollection.Name)]
public sealed class OarE2eTests
{
    [SkippableFact]
    public void Real_oar_single_concurrent_oardel_walltime_and_prologue_mode()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("ALUMET_E2E_OAR") == "1", "ALUMET_E2E_OAR=1 runs the real-OAR end-to-end test");
        string driver = Path.Combine(RepoRoot(), "tests", "e2e", "oar", "run-e2e.sh");
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(driver);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(6))) { p.Kill(entireProcessTree: true); Assert.Fail("run-e2e.sh did not finish within 6 minutes\n" + stdout); }
        string all = stdout + stderr.Result;
        Assert.True(p.ExitCode == 0, $"run-e2e.sh exit {p.ExitCode}\n{all}");
        Assert.Contains(": 0 failure(s)", all);
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Alumet.Hpc.sln"))) return d.FullName;
        throw new InvalidOperationException("Alumet.Hpc.sln not found above " + AppContext.BaseDirectory);
    }
}
