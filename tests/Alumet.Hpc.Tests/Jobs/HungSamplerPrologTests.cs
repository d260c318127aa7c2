using System.Diagnostics;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>
/// A prolog facing a hung node sampler (SIGSTOP), through the published binary as slurmd runs it: it returns, exit 0,
/// within its bound (SamplerLauncher.DetachWait, 8 s) with one line saying why; and the registration it gave up on is
/// never applied when the sampler wakes (SIGCONT), before or after the job's epilog: the epilog's row stays, no state
/// dir comes back, the job is not sampled.
/// </summary>
public sealed class HungSamplerPrologTests : IDisposable
{
    private const ulong MaxRange = 262_143_328_850;
    private const double PrologBoundS = 8;
    private readonly TestInstallation _install = new(PowercapTree.Standard(1, MaxRange),
        "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nstop_timeout_s = 3\nlinger_s = 0");

    public void Dispose() => _install.Dispose();

    private (int Code, double Seconds) Hook(string context, string job)
    {
        var sw = Stopwatch.StartNew();
        using var p = _install.StartSlurmHook(context, job);
        Assert.True(p.WaitForExit(120_000), $"{context} {job} still runs after 120 s");
        return (p.ExitCode, sw.Elapsed.TotalSeconds);
    }

    private static void Signal(int pid, string signal)
    {
        using var kill = Process.Start("/bin/kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    private string Ctl(string verb)
    {
        using var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["ctl", verb, "--config", _install.ConfigPath])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return text;
    }

    private string Log() => File.Exists(_install.Config.Paths.LogFile) ? File.ReadAllText(_install.Config.Paths.LogFile) : "";

    private IReadOnlyList<JobRecord> Rows(string job)
    {
        using var db = AccountingDb.OpenReadOnly(_install.Config.Paths.Database);
        return db.GetJob(job);
    }

    private string State(string job) => Path.Combine(_install.Config.Paths.StateDir, "slurm", job);

    /// <summary>The reason of the row of a job whose prolog gave up on a stalled sampler.</summary>
    private const string Withdrawn = "its prolog gave up waiting for the node sampler and withdrew the registration (the sampler was stalled)";

    /// <summary>Job 601 starts the sampler, which is then stopped; job 602's prolog gives up on it (within its bound, with
    /// one line saying why: checked with <paramref name="checkBound"/>).</summary>
    private int StoppedSamplerAndAProlog(bool checkBound)
    {
        Assert.Equal(0, Hook("prolog_slurmd", "601").Code);
        int pid = SamplerPid.Read(Alumet.Hpc.Spool.NodeSpool.Root(_install.Config))!.Value.Pid;
        Signal(pid, "STOP");
        var (code, seconds) = Hook("prolog_slurmd", "602");
        Assert.Equal(0, code);
        if (!checkBound) return pid;
        Assert.True(seconds < PrologBoundS + 2, $"the prolog took {seconds:0.0} s against a stopped sampler; its bound is {PrologBoundS} s");
        var said = Log().Split('\n').Where(l => l.Contains("slurm prolog job 602", StringComparison.Ordinal)).ToList();
        Assert.True(said.Count == 1 && said[0].Contains($"job 602 not registered: the node sampler (pid {pid}) is running but did not register it within the prolog's 8 s", StringComparison.Ordinal),
            "the prolog's lines: " + string.Join(" / ", said));
        return pid;
    }

    [SkippableFact]
    public void APrologFacingAStoppedSamplerReturnsWithinItsBound()
    {
        Skip.If(Environment.UserName != "root", "needs root (the node sampler's state_dir, SIGSTOP of its process)");
        int pid = StoppedSamplerAndAProlog(checkBound: true);
        Signal(pid, "CONT");
    }

    /// <summary>
    /// The sampler wakes after the epilog (<paramref name="wakeAfterEpilog"/>) or before it: either way job 602 is never
    /// registered, its row is the epilog's not_measured, and the sampler says once why it did not apply it.
    /// </summary>
    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void ARegistrationItsPrologGaveUpOnIsNeverApplied(bool wakeAfterEpilog)
    {
        Skip.If(Environment.UserName != "root", "needs root (the node sampler's state_dir, SIGSTOP of its process)");
        int pid = StoppedSamplerAndAProlog(checkBound: false);
        if (wakeAfterEpilog)
        {
            Assert.Equal(0, Hook("epilog_slurmd", "602").Code);
            Signal(pid, "CONT");
        }
        else
        {
            Signal(pid, "CONT");
            Assert.Contains("snapshots: ", Ctl("status"));
            Assert.Equal(0, Hook("epilog_slurmd", "602").Code);
        }
        string jobs = Ctl("jobs"); // answered after the queued registrations were read
        Assert.DoesNotContain("602", jobs);
        Assert.False(Directory.Exists(State("602")), $"job 602 has a state dir: {string.Join(", ", Directory.Exists(State("602")) ? Directory.GetFiles(State("602")).Select(Path.GetFileName) : [])}");
        var row = Assert.Single(Rows("602"));
        Assert.Equal((JobStatus.NotMeasured, Withdrawn), (row.Status, row.Reason));

        Assert.Equal(0, Hook("epilog_slurmd", "601").Code);
        var sw = Stopwatch.StartNew();
        while (Process.GetProcesses().Any(p => p.Id == pid) && sw.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(100);
        Assert.False(Process.GetProcesses().Any(p => p.Id == pid), $"the sampler still runs 60 s after its last job's epilog: {Ctl("jobs")}");
        row = Assert.Single(Rows("602"));
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        Assert.False(Directory.Exists(State("602")));
        Assert.Single(Log().Split('\n'), l => l.Contains("node sampler: job 602: registration not applied: its prolog gave up on it at ", StringComparison.Ordinal));
    }

    /// <summary>
    /// A registration made before the job's epilog recorded it not_measured (no state dir here), read by the sampler only
    /// after it, without <c>until=</c> (a prolog of a version before it, during an upgrade): refused, by the epilog's
    /// marker, with the reason; the job is not registered, has no state dir, and its one row stays the epilog's. On
    /// 089dafd the epilog wrote no marker: the registration was applied ("ok job 602 registered").
    /// </summary>
    [SkippableFact]
    public void AnOlderPrologsRegistrationReadAfterTheNotMeasuredEpilogIsNotApplied()
    {
        Skip.If(Environment.UserName != "root", "needs root (the node sampler's state_dir)");
        Assert.Equal(0, Hook("prolog_slurmd", "601").Code);
        long prologStart = Alumet.Hpc.Core.Clock.WallNs();
        Assert.Equal(0, Hook("epilog_slurmd", "602").Code);
        var row = Assert.Single(Rows("602"));
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        var late = new JobRegistration(new JobIdentity("slurm", "test", "602", "root", 0, "node1", ""), null, null, Exclusive: false, Raw: false, prologStart);
        Assert.DoesNotContain("until=", late.ToLine());

        string? answer = NodeSocket.Request(_install.Config.Paths.StateDir, "register " + late.ToLine(), TimeSpan.FromSeconds(10), out string? error);

        var finalizedAt = File.GetLastWriteTimeUtc(JobFinalizer.MarkerPath(State("602")));
        string inv(DateTime t) => t.ToString("yyyy-MM-ddTHH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal($"error job 602: registration not applied: the job was finalized at {inv(finalizedAt)}Z, after its prolog registered it at {inv(Alumet.Hpc.Core.Clock.FromWallNs(prologStart))}Z\n", answer ?? error);
        Assert.DoesNotContain("602", Ctl("jobs"));
        Assert.False(Directory.Exists(State("602")));
        Assert.Equal($"not_measured: the prolog did not register this job with a sampler on this node (prolog not configured, failed, or PrologFlags without Alloc)\nrun={row.RunId}\n",
                     File.ReadAllText(JobFinalizer.MarkerPath(State("602"))));
        Assert.Equal(0, Hook("epilog_slurmd", "601").Code);
        row = Assert.Single(Rows("602"));
        Assert.Equal(JobStatus.NotMeasured, row.Status);
    }

    /// <summary>
    /// A registration's deadline is on CLOCK_BOOTTIME, which no clock step moves: sent as a prolog writes it (both
    /// deadlines, <c>until=</c> on the wall clock for an older sampler, <c>until_boot=</c>) with the wall clock stepped
    /// <paramref name="wallStepS"/> s against boot time, the sampler goes by boot time alone: a stall during which the
    /// clock went back 60 s no longer lets a late one through (on 089dafd: "ok job 602 registered"), a forward step no
    /// longer refuses one in time (on 089dafd: "error … 60.0 s before the sampler read it"). A prolog of an earlier
    /// version (<paramref name="bootLeftS"/> null: <c>until=</c> only) is still held to its wall deadline.
    /// </summary>
    [SkippableTheory]
    [InlineData(60, -2)]   // stepped back 60 s: in time by the wall clock, 2 s late by boot time
    [InlineData(-60, 5)]   // stepped forward 60 s: 55 s late by the wall clock, in time by boot time
    [InlineData(-2, null)] // an older prolog, 2 s late by the wall clock (its only deadline)
    public void ARegistrationsDeadlineIsOnTheClockNoStepMoves(int wallStepS, int? bootLeftS)
    {
        Skip.If(Environment.UserName != "root", "needs root (the node sampler's state_dir)");
        Assert.Equal(0, Hook("prolog_slurmd", "601").Code);
        const long S = 1_000_000_000;
        long wall = Alumet.Hpc.Core.Clock.WallNs();
        var reg = new JobRegistration(new JobIdentity("slurm", "test", "602", "root", 0, "node1", ""), null, null, Exclusive: false, Raw: false, wall)
        {
            ApplyByWallNs = wall + (wallStepS + (bootLeftS ?? 0)) * S,
            ApplyByBootNs = bootLeftS is { } left ? Clock.BootNs() + left * S : 0,
        };

        string? answer = NodeSocket.Request(_install.Config.Paths.StateDir, "register " + reg.ToLine(), TimeSpan.FromSeconds(10), out string? error);

        if (bootLeftS > 0)
        {
            Assert.Equal("ok job 602 registered (2 job(s) on the node)\n", answer ?? error);
            Assert.Contains("slurm 602 ", Ctl("jobs"));
            Assert.Equal(0, Hook("epilog_slurmd", "602").Code);
            Assert.Equal(JobStatus.Complete, Assert.Single(Rows("602")).Status);
        }
        else
        {
            var said = System.Text.RegularExpressions.Regex.Match(answer ?? error ?? "",
                @"^error job 602: registration not applied: its prolog gave up on it at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z, (\d+\.\d) s before the sampler read it \(the sampler was stalled\)\n$");
            Assert.True(said.Success, answer ?? error);
            double lateS = double.Parse(said.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(lateS, 2.0, 4.0);
            Assert.DoesNotContain("602", Ctl("jobs"));
            Assert.False(Directory.Exists(State("602")));
        }
        Assert.Equal(0, Hook("epilog_slurmd", "601").Code);
    }

    /// <summary>
    /// The not_measured marker cannot be written (here the scheduler's directory is a file): the row is recorded and
    /// the epilog's outcome stays not_measured, with one warning saying what is missing (after 06d748a, before this:
    /// "error: job 604: stop/finalize failed: The file '…/slurm' already exists.").
    /// </summary>
    [SkippableFact]
    public void AMarkerThatCannotBeWrittenLeavesTheNotMeasuredOutcome()
    {
        Skip.If(Environment.UserName != "root", "needs root (the node sampler's state_dir)");
        string slurm = Path.Combine(_install.Config.Paths.StateDir, "slurm");
        Directory.CreateDirectory(_install.Config.Paths.StateDir);
        File.WriteAllText(slurm, "not a directory\n");
        Assert.Equal(0, Hook("epilog_slurmd", "604").Code);
        Assert.Equal(JobStatus.NotMeasured, Assert.Single(Rows("604")).Status);
        var lines = Log().Split('\n');
        Assert.Single(lines, l => l.EndsWith($" warning: job 604: its not_measured marker could not be written (The file '{slurm}' already exists.); a registration read late by a stalled sampler is not refused by it", StringComparison.Ordinal));
        Assert.Single(lines, l => l.Contains($"slurm epilog job 604 on node1: not_measured: job 604: no sampler state in {Path.Combine(slurm, "604")}", StringComparison.Ordinal));
    }

    /// <summary>
    /// A sampler stopped (SIGSTOP, descheduled) inside a registration, after its checks (NodeSampler.Late) and before its
    /// answer, held here at the job's cgroup lookup, which Register makes between the two: meanwhile the job's epilog
    /// finds no state and records it not_measured. The registration is refused and undone, the marker and the row stay.
    /// On dd629f5 it was applied ("job 602 registered (1 job(s) on the node)"): a job that had ended, sampled until its
    /// cgroup was missed (an exclusive one until its maximum lifetime, charged the whole node).
    /// </summary>
    [Fact]
    public void AJobItsEpilogRecordedNotMeasuredDuringItsRegistrationIsNotKept()
    {
        using var rig = new NodeRig();
        var cfg = rig.Config();
        var job = new JobIdentity("slurm", "test", "602", "alice", 1000, "node1");
        StopResult? epilog = null;
        using var node = rig.NewNode(cfg, beforeCgroupLookup: () =>
        {
            Thread.Sleep(20); // the marker's time is after the registration's start=, whatever the clocks' resolution
            epilog ??= SamplerLauncher.StopAndFinalize(job, cfg);
        });
        var reg = new JobRegistration(job, null, null, Exclusive: false, Raw: false, Clock.WallNs());

        var refused = Assert.Throws<NodeSampler.RegistrationRefused>(() => node.Register(reg, recovered: false, Clock.MonotonicNs()));

        Assert.Equal("not_measured", epilog!.Status);
        Assert.Matches(@"^job 602: registration not applied: the job was finalized at \S+Z, after its prolog registered it at \S+Z$", refused.Message);
        Assert.Equal(0, node.JobCount);
        string state = job.StateDirectory(cfg.Paths.StateDir);
        Assert.False(Directory.Exists(state));
        Assert.Equal("not_measured: the prolog did not register this job with a sampler on this node (prolog not configured, failed, or PrologFlags without Alloc)",
            JobFinalizer.FinalizedLine(state));
        // A sampler stopped past this second check is told by the signal the epilog raises after its marker (Housekeep).
        Assert.Equal("slurm/602\n", File.ReadAllText(Path.Combine(Alumet.Hpc.Spool.NodeSpool.Root(cfg), FinalizedElsewhere.File)));
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        Assert.Equal(JobStatus.NotMeasured, Assert.Single(db.GetJob("602")).Status);
    }

    /// <summary>
    /// The same stop, past the registration's deadline (until_boot: the prolog's bound less its grace, as
    /// SamplerLauncher.Start sets it): its prolog has given up and said the registration is withdrawn. Refused and
    /// undone, no state dir left for a restarted sampler to recover. On dd629f5: applied.
    /// </summary>
    [Fact]
    public void ARegistrationItsPrologGaveUpOnWhileItWasAppliedIsNotKept()
    {
        using var rig = new NodeRig();
        var cfg = rig.Config();
        using var node = rig.NewNode(cfg, beforeCgroupLookup: () => Thread.Sleep(1500));
        var reg = new JobRegistration(NodeRig.Job("603").Job, null, null, Exclusive: false, Raw: false, Clock.WallNs())
        {
            ApplyByBootNs = Clock.BootNs() + 1_000_000_000,
        };

        var refused = Assert.Throws<NodeSampler.RegistrationRefused>(() => node.Register(reg, recovered: false, Clock.MonotonicNs()));

        Assert.Matches(@"^job 603: registration not applied: its prolog gave up on it at \S+Z, \d+\.\d s before the sampler read it \(the sampler was stalled\)$", refused.Message);
        Assert.Equal(0, node.JobCount);
        Assert.False(Directory.Exists(reg.Job.StateDirectory(cfg.Paths.StateDir)), "its state dir (a restarted sampler would recover the registration in it)");
    }

    /// <summary>
    /// The last window of s11 hooks.md 2a: the sampler applies the registration (both checks pass) and stalls before its
    /// prolog reads the answer, longer than the prolog's grace: the prolog gives up and says the registration is
    /// withdrawn. Here the real prolog (SamplerLauncher.Start, its 8 s bound) talks to a socket that applies the
    /// registration to the node sampler at once and answers each request only after 9 s. The withdrawal it leaves makes
    /// the sampler drop the job and its state at its next housekeeping, and the epilog records the job not_measured with
    /// why: what the prolog said. On 26325a9 the job stayed registered and sampled (JobCount 1 after the housekeeping).
    /// </summary>
    [Fact]
    public void ARegistrationAppliedJustBeforeItsPrologGaveUpIsWithdrawn()
    {
        using var rig = new NodeRig();
        var cfg = rig.Config();
        rig.SetJobCpu("605", 0); // its cgroup is there: nothing but the withdrawal ends it
        using var node = rig.NewNode(cfg);
        var job = NodeRig.Job("605").Job;
        using var server = new NodeSocket.Server(NodeSocket.PathFor(cfg.Paths.StateDir), line =>
        {
            var reg = JobRegistration.Parse(line["register ".Length..].Trim(), out string? error) ?? throw new InvalidOperationException(error);
            string said = node.Register(reg, recovered: false, Clock.MonotonicNs());
            Thread.Sleep(9_000); // stalled after its checks, past the prolog's bound
            return $"ok {said}\n";
        });

        var prolog = SamplerLauncher.Start(new SamplerLaunch(job, null, [], null), cfg, "/bin/false"); // never starts a daemon here
        Assert.False(prolog.Ok, prolog.Message);
        Assert.Contains("job 605 not registered: ", prolog.Message);
        Assert.Contains("; the registration is withdrawn (a sampler that wakes later does not apply it); see ", prolog.Message);
        Assert.Equal(1, node.JobCount); // applied meanwhile: the window

        node.Housekeep(Clock.MonotonicNs());
        Assert.Equal(0, node.JobCount);
        string state = job.StateDirectory(cfg.Paths.StateDir);
        Assert.False(Directory.Exists(state), "its state (an epilog would finalize it, a restarted sampler recover it)");

        var epilog = SamplerLauncher.StopAndFinalize(job, cfg);
        Assert.Equal(("not_measured", $"job 605: {Withdrawn}"), (epilog.Status, epilog.Message));
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        var row = Assert.Single(db.GetJob("605"));
        Assert.Equal((JobStatus.NotMeasured, Withdrawn), (row.Status, row.Reason));
        Assert.False(File.Exists(state + ".withdrawn"), "the withdrawal, once the epilog's marker stands for it");
    }
}
