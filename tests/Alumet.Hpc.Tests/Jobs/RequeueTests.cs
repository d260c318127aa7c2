using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Commands;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Schedulers.Slurm;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>
/// A job id run again on the node (a Slurm requeue), through the published binary as slurmd runs the Prolog and Epilog
/// (the run in SLURM_JOB_START_TIME): each run gets its own row, with its own energy, whatever the earlier run left.
/// </summary>
public sealed class RequeueTests
{
    private const ulong MaxRange = 262_143_328_850;

    private static readonly (string, string) Run1 = ("SLURM_JOB_START_TIME", "1764662400"), // 2025-12-02T08:00:00Z
                                              Run2 = ("SLURM_JOB_START_TIME", "1764666000"); // 2025-12-02T09:00:00Z

    private static TestInstallation Node() =>
        new(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"");

    private static string State(TestInstallation install, string jobId) =>
        new JobIdentity("slurm", "test", jobId, "root", 0, "node1").StateDirectory(install.Config.Paths.StateDir);

    /// <summary>Run 1 of <paramref name="jobId"/>, registered by its prolog, with 2 J in its spool (the package counter
    /// moved from <paramref name="counterUj"/>, where the jobs before left it): its state dir.</summary>
    private static string Run1With2J(TestInstallation install, string jobId, ulong counterUj = 0)
    {
        string state = State(install, jobId);
        SlurmRunIdTests.Hook(install, "prolog_slurmd", jobId, Run1);
        install.Powercap.SetEnergy("intel-rapl:0", counterUj + 2_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, $"job:{jobId}", "cpu_package").Sum(r => r.Value) == 2_000_000, "run 1's 2 J in its spool");
        return state;
    }

    /// <summary>
    /// Run 1 with 2 J, then the node goes down (no epilog for run 1 now); the prolog of run 2, twice (the same run again:
    /// nothing changes), starts a node sampler that takes run 1 back, ends it there and registers run 2, whose 3 J reach
    /// its spool. Returns the job's state dir (run 2's).
    /// </summary>
    private static string Run2AfterTheNodeWentDownInRun1(TestInstallation install, string jobId)
    {
        string state = Run1With2J(install, jobId);
        int pid = SamplerPid.Read(NodeSpool.Root(install.Config))!.Value.Pid;
        Alumet.Hpc.Native.Libc.kill(pid, 9);
        ExecBinaryTests.WaitFor(() => ProcessState.Read(pid) is not { State: not ('Z' or 'X') }, "the node sampler's death");
        SlurmRunIdTests.Hook(install, "prolog_slurmd", jobId, Run2);
        SlurmRunIdTests.Hook(install, "prolog_slurmd", jobId, Run2);
        install.Powercap.SetEnergy("intel-rapl:0", 5_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, $"job:{jobId}", "cpu_package").Any(r => r.Value == 3_000_000), "the 3 J of run 2 in the job's spool");
        return state;
    }

    /// <summary>
    /// The node crashed during run 1 (its epilog never came); when the job is requeued to it, the prolog of run 2 starts a
    /// node sampler that takes run 1 back, then registers run 2: run 1 ends there (partial, its row saying why), its spool
    /// is kept aside and finalized, and run 2 is measured alone from its registration. The prolog of run 2 asked again
    /// (the same run) is answered "already registered". Fails on 7410ac4: run 2's registration was answered "already
    /// registered", so run 2 was sampled into run 1's spool: one row, run 1's, with both runs' energy.
    /// </summary>
    [SkippableFact]
    public void ARequeueWhileTheEarlierRunIsStillRegisteredEndsItAndMeasuresEachRunAlone()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        using var install = Node();
        string state = Run2AfterTheNodeWentDownInRun1(install, "308");
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "308", Run2);

        var runs = FinalizationTests.Runs(install, "308", 2);
        Assert.Equal([("20251202T080000000Z", JobStatus.Partial, 2.0), ("20251202T090000000Z", JobStatus.Complete, 3.0)],
            runs.Select(r => (r.RunId, r.Status, Math.Round(r.Energy.PackageJ, 9))));
        Assert.Equal(["the job id was registered again by a later run before this run's end came; the node sampler restarted during the job (crash or kill): the energy between its last flush and the restart is missing", ""],
            runs.Select(r => r.Reason));
        // The retry logs once it has concluded (after its row, as every finalization does): wait for its line.
        const string retried = " info: job 308: finalized partial from its kept spool (the job id was registered again by a later run";
        ExecBinaryTests.WaitFor(() => File.ReadAllLines(install.Config.Paths.LogFile).Any(l => l.Contains(retried, StringComparison.Ordinal)), "the retry's log line");
        var log = File.ReadAllLines(install.Config.Paths.LogFile);
        Assert.Single(log, l => l.Contains("slurm prolog job 308 on node1: job 308 already registered; ", StringComparison.Ordinal));
        Assert.Single(log, l => l.Contains(retried, StringComparison.Ordinal));
        string jobs = Path.GetDirectoryName(state)!;
        ExecBinaryTests.WaitFor(() => Directory.GetDirectories(jobs).Length == 0, "both runs' state dirs removed once finalized");
        // Run 1's marker stays beside run 2's (a late epilog of run 1 is answered from it: ALateEpilogOfAnEarlierRunNeverEndsTheLaterRun).
        Assert.Equal(["308.finalized", "308.run-20251202T080000000Z.finalized"], Directory.GetFiles(jobs).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// The node went down during run 1 (no epilog); run 2's prolog ends run 1 (moved aside, finalized partial) and
    /// registers run 2. Then run 1's epilog comes, late: it is answered from run 1's row ("already finalized"), and run 2
    /// goes on being sampled until its own epilog, which gets all its energy. A late epilog of a run never registered on
    /// the node (job 312's run 1) records that run not_measured, once, beside run 2's state, which it leaves as it was.
    /// Fails on fa7e503: the late epilog's end (it carried no run) ended run 2 at 3 J, whose own epilog then found it
    /// "already finalized".
    /// </summary>
    [SkippableFact]
    public void ALateEpilogOfAnEarlierRunNeverEndsTheLaterRun()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        using var install = Node();
        string state = Run2AfterTheNodeWentDownInRun1(install, "311");
        const string retried = " info: job 311: finalized partial from its kept spool (the job id was registered again by a later run";
        ExecBinaryTests.WaitFor(() => File.ReadAllLines(install.Config.Paths.LogFile).Any(l => l.Contains(retried, StringComparison.Ordinal)), "run 1's row, from its spool moved aside");

        SlurmRunIdTests.Hook(install, "epilog_slurmd", "311", Run1); // run 1's epilog, late
        Assert.Equal([("20251202T080000000Z", JobStatus.Partial, 2.0)],
            FinalizationTests.Runs(install, "311", 1).Select(r => (r.RunId, r.Status, Math.Round(r.Energy.PackageJ, 9))));
        install.Powercap.SetEnergy("intel-rapl:0", 9_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:311", "cpu_package").Sum(r => r.Value) == 7_000_000, "the 7 J of run 2 in the job's spool");
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "311", Run2);
        Assert.Equal([("20251202T080000000Z", JobStatus.Partial, 2.0), ("20251202T090000000Z", JobStatus.Complete, 7.0)],
            FinalizationTests.Runs(install, "311", 2).Select(r => (r.RunId, r.Status, Math.Round(r.Energy.PackageJ, 9))));
        Assert.Single(File.ReadAllLines(install.Config.Paths.LogFile), l => l.Contains("slurm epilog job 311 on node1: already: job 311: run 20251202T080000000Z already finalized (partial: "
            + "the job id was registered again by a later run before this run's end came; the node sampler restarted during the job (crash or kill): the energy between its last flush and the restart is missing) (", StringComparison.Ordinal));

        // Job 312: run 2 registered; run 1 was never registered on this node. Its late epilog, twice.
        string state312 = State(install, "312");
        SlurmRunIdTests.Hook(install, "prolog_slurmd", "312", Run2);
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "312", Run1);
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "312", Run1);
        install.Powercap.SetEnergy("intel-rapl:0", 11_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state312, "job:312", "cpu_package").Sum(r => r.Value) == 2_000_000, "the 2 J of job 312's run 2 in its spool");
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "312", Run2);
        var log = File.ReadAllLines(install.Config.Paths.LogFile);
        Assert.Single(log, l => l.Contains($"slurm epilog job 312 on node1: not_measured: job 312: run 20251202T080000000Z has no sampler state here (the job's state in {state312} is its run 20251202T090000000Z's) (", StringComparison.Ordinal));
        Assert.Single(log, l => l.Contains($"slurm epilog job 312 on node1: already: job 312: run 20251202T080000000Z already finalized (not_measured: {NotRegistered}) (", StringComparison.Ordinal));
        Assert.Equal([("20251202T080000000Z", JobStatus.NotMeasured, 0.0, NotRegistered), ("20251202T090000000Z", JobStatus.Complete, 2.0, "")],
            FinalizationTests.Runs(install, "312", 2).Select(r => (r.RunId, r.Status, Math.Round(r.Energy.PackageJ, 9), r.Reason)));
    }

    /// <summary>
    /// A run's finalized marker stays that run's when another run of the job id takes the job's place: run 1 measured and
    /// ended by its epilog, then run 2 registered (job 313), or run 2's epilog recorded run 2 not_measured (job 314, its
    /// prolog did not register it). Run 1's epilog, repeated late, is answered "already finalized" from run 1's marker, and
    /// run 1's row stays complete. Fails on main after the end's run id (the late epilog no longer ends run 2): run 2's
    /// registration deleted run 1's marker, run 2's not_measured marker replaced it, and the late epilog of run 1 then
    /// answered "not_measured" for a run that was measured (its row stayed: a not_measured row never replaces a measured
    /// one), its marker taking run 2's place (314).
    /// </summary>
    [SkippableFact]
    public void ARunsMarkerStaysThatRunsWhenAnotherRunTakesTheJobsPlace()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        using var install = Node();
        string state314 = Run1With2J(install, "314");
        // Run 1's epilog; run 2's epilog (its prolog never registered it here); run 1's epilog again, late.
        foreach (var run in new[] { Run1, Run2, Run1 })
            SlurmRunIdTests.Hook(install, "epilog_slurmd", "314", run);
        Run1With2J(install, "313", counterUj: 2_000_000); // alone on the node: its 2 J are all the node's
        // Run 1's epilog; run 2's prolog; run 1's epilog again, late.
        foreach (var (context, run) in new[] { ("epilog_slurmd", Run1), ("prolog_slurmd", Run2), ("epilog_slurmd", Run1) })
            SlurmRunIdTests.Hook(install, context, "313", run);

        var log = File.ReadAllLines(install.Config.Paths.LogFile);
        string LastEpilogSaid(string job) // the outcome of its last epilog, without its duration
        {
            string said = $"slurm epilog job {job} on node1: ", line = log.Last(l => l.Contains(said, StringComparison.Ordinal));
            line = line[(line.IndexOf(said, StringComparison.Ordinal) + said.Length)..];
            return line[..line.LastIndexOf(" (", StringComparison.Ordinal)];
        }
        Assert.Equal(("already: job 313: run 20251202T080000000Z already finalized (complete)", "already: job 314: run 20251202T080000000Z already finalized (complete)"),
            (LastEpilogSaid("313"), LastEpilogSaid("314")));
        Assert.Equal([("20251202T080000000Z", JobStatus.Complete, 2.0, "")],
            FinalizationTests.Runs(install, "313", 1).Select(r => (r.RunId, r.Status, Math.Round(r.Energy.PackageJ, 9), r.Reason)));
        Assert.Equal([("20251202T080000000Z", JobStatus.Complete, 2.0, ""), ("20251202T090000000Z", JobStatus.NotMeasured, 0.0, NotRegistered)],
            FinalizationTests.Runs(install, "314", 2).Select(r => (r.RunId, r.Status, Math.Round(r.Energy.PackageJ, 9), r.Reason)));
        Assert.Equal(["313.run-20251202T080000000Z.finalized", "314.finalized", "314.run-20251202T080000000Z.finalized"],
            Directory.GetFiles(Path.GetDirectoryName(state314)!).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    private const string NotRegistered = "the prolog did not register this job with a sampler on this node (prolog not configured, failed, or PrologFlags without Alloc)";

    /// <summary>
    /// Run 2 of a job id whose prolog did not register it on this node (prolog failed or not configured): its epilog
    /// records run 2 not_measured, with why, though run 1's finalized marker is there; the marker then names run 2, and a
    /// repeated epilog of run 2 is answered from it. A marker of a version before this one names no run: it is taken as
    /// the job's, as that version took it ("already finalized", no row). Fails on a863da4: run 2's epilog found run 1's
    /// marker and answered "already finalized (complete)": no row for run 2.
    /// </summary>
    [SkippableFact]
    public void AnEpilogOfARequeuedRunWhosePrologDidNotRegisterItRecordsThatRunNotMeasured()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        using var install = Node();
        string state = Run1With2J(install, "309");
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "309", Run1);

        SlurmRunIdTests.Hook(install, "epilog_slurmd", "309", Run2); // run 2: its prolog never registered it here
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "309", Run2); // again: answered from run 2's marker

        var runs = FinalizationTests.Runs(install, "309", 2);
        Assert.Equal([("20251202T080000000Z", JobStatus.Complete, 2.0, ""), ("20251202T090000000Z", JobStatus.NotMeasured, 0.0, NotRegistered)],
            runs.Select(r => (r.RunId, r.Status, Math.Round(r.Energy.PackageJ, 9), r.Reason)));
        Assert.Equal(($"not_measured: {NotRegistered}", "20251202T090000000Z"), (JobFinalizer.FinalizedLine(state), JobFinalizer.FinalizedRun(state)));
        var log = File.ReadAllLines(install.Config.Paths.LogFile);
        Assert.Single(log, l => l.Contains($"slurm epilog job 309 on node1: not_measured: job 309: no sampler state in {state} (", StringComparison.Ordinal));
        Assert.Single(log, l => l.Contains($"slurm epilog job 309 on node1: already: job 309: already finalized (not_measured: {NotRegistered}) (", StringComparison.Ordinal));

        // A marker as a version before this one left it (no run in it): the job's, whichever run asks.
        string old = State(install, "310");
        File.WriteAllText(JobFinalizer.MarkerPath(old), "complete");
        SlurmRunIdTests.Hook(install, "epilog_slurmd", "310", Run2);
        Assert.Empty(FinalizationTests.Runs(install, "310", 0));
        Assert.Single(File.ReadAllLines(install.Config.Paths.LogFile), l => l.Contains("slurm epilog job 310 on node1: already: job 310: already finalized (complete) (", StringComparison.Ordinal));
    }
}
