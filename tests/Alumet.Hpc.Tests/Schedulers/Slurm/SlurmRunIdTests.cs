using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>
/// Which run a node's row names, through the published binary as slurmd runs the Prolog and Epilog (the job in the
/// environment): one installation per node (each node has its own state_dir and sampler).
/// </summary>
public sealed class SlurmRunIdTests
{
    private const ulong MaxRange = 262_143_328_850; // a real max_energy_range_uj

    private static TestInstallation Node() =>
        new(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0");

    internal static void Hook(TestInstallation install, string context, string jobId, params (string Key, string Value)[] env)
    {
        using var p = install.StartSlurmHook(context, jobId, env);
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True((p.ExitCode, stdout, stderr.Result) == (0, "", ""), $"{context} {jobId}: exit {p.ExitCode}, said {stdout}{stderr.Result}");
    }

    private static JobRecord RowOf(TestInstallation install, string jobId)
    {
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        return Assert.Single(db.GetJob(jobId));
    }

    /// <summary>
    /// Without a SLUID the run is named by the job's start as slurmctld gives it to the Prolog and Epilog
    /// (SLURM_JOB_START_TIME): the node that measured the job and a node whose prolog never registered it (its epilog's
    /// not_measured row) name the same run, so the report keeps them together. Fails on 26325a9: the measuring node's run
    /// id was its prolog's time, the other node's its epilog's time (neither the job's start).
    /// </summary>
    [SkippableFact]
    public void ANodeThatDidNotMeasureTheJobNamesTheRunTheMeasuringNodeNamed()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        (string, string) started = ("SLURM_JOB_START_TIME", "1764641600"); // 2025-12-02T02:13:20Z
        using var measuring = Node();
        using var missed = Node();
        Hook(measuring, "prolog_slurmd", "31", started);
        Hook(measuring, "epilog_slurmd", "31", started);
        Hook(missed, "epilog_slurmd", "31", started, ("SLURMD_NODENAME", "node2")); // its prolog never ran
        var (a, b) = (RowOf(measuring, "31"), RowOf(missed, "31"));
        Assert.Equal((JobStatus.Complete, "node1", "20251202T021320000Z"), (a.Status, a.Node, a.RunId));
        Assert.Equal((JobStatus.NotMeasured, "node2", "20251202T021320000Z"), (b.Status, b.Node, b.RunId));

        // A SLUID still names the run whatever the start; a start that is not a time refuses the job in one line.
        Hook(measuring, "epilog_slurmd", "32", started, ("SLURM_JOB_SLUID", "ab12"));
        Assert.Equal("ab12", RowOf(measuring, "32").RunId);
        Hook(measuring, "prolog_slurmd", "33", ("SLURM_JOB_START_TIME", "soon"));
        Assert.Contains(" error: slurm prolog: refused: SLURM_JOB_START_TIME \"soon\" is not a time (seconds since 1970); nothing done (",
            File.ReadAllText(measuring.Config.Paths.LogFile));
    }
}
