using System.Diagnostics;
using System.Globalization;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// <c>alumet-hpc exec</c> as a test runs it: the binary (<see cref="TestInstallation.Binary"/>, ALUMET_HPC_BIN) in a
/// child process, never <c>ExecCommand.Run</c> in the test host. As root, exec moves the process that runs it into the
/// command's cgroup (&lt;hierarchy&gt;/alumet/exec_ID) while it forks the command, then back: in the test host that is
/// every thread of the host, so the CPU time of the tests running meanwhile counts in the exec's cgroup and whatever they
/// start then (a Process.Start, a node sampler) is born in it and stays there (its removal then fails with EBUSY). It
/// also sets the process-wide log and writes to the host's Console.Error (ExecInTheTestHostTests).
/// </summary>
public static class ExecBinary
{
    /// <summary>
    /// Runs <c>alumet-hpc exec --config CONFIG [--job-id ID] [--no-report] [--storage-period-ms N] -- COMMAND</c> to its
    /// end (the report, when asked, is on stderr); <paramref name="jobId"/> from <see cref="ExecIds"/>, or null for the
    /// installation's own exec counter.
    /// </summary>
    public static (int ExitCode, string Stdout, string Stderr) Exec(TestInstallation install, string? jobId, string[] command,
                                                                    bool report = false, int? storagePeriodMs = null)
    {
        var psi = new ProcessStartInfo(TestInstallation.Binary()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "exec", "--config", install.ConfigPath }) psi.ArgumentList.Add(a);
        if (jobId is not null) { psi.ArgumentList.Add("--job-id"); psi.ArgumentList.Add(jobId); }
        if (!report) psi.ArgumentList.Add("--no-report");
        if (storagePeriodMs is { } sp) { psi.ArgumentList.Add("--storage-period-ms"); psi.ArgumentList.Add(sp.ToString(CultureInfo.InvariantCulture)); }
        psi.ArgumentList.Add("--");
        foreach (string a in command) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        if (!p.WaitForExit(120_000))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"alumet-hpc exec {string.Join(' ', command)} still runs after 120 s: {stderr}");
        }
        return (p.ExitCode, stdout.Result, stderr);
    }
}
