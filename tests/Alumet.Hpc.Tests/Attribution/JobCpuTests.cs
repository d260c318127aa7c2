using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Attribution;

/// <summary>
/// The step listing of a job cgroup (Slurm's step_* children) is redone only when the job directory changed: a period
/// whose job directory has the same stat reads the steps it already knows. Exact step deltas on a generated v1 tree,
/// through <see cref="JobCpu.Sample"/> (what every node sampler period calls) with the tests' Slurm-layout locator.
/// </summary>
public sealed class JobCpuTests : IDisposable
{
    private readonly CgroupTree _cg = new();
    private const string Job = "cpuacct/slurm/uid_1000/job_42";

    public void Dispose() => _cg.Dispose();

    /// <summary>Counts the listings of the locator it wraps.</summary>
    private sealed class CountingLocator(DirectoryJobLocator inner) : IJobCgroupLocator, IStepCgroupLocator
    {
        public int Listings;
        public JobCgroup? Find(JobIdentity job, out Presence presence) => inner.Find(job, out presence);
        public IReadOnlyList<StepCgroup> EnumerateSteps(JobCgroup job)
        {
            Listings++;
            return inner.EnumerateSteps(job);
        }
    }

    private (JobCpu Cpu, CountingLocator Locator) NewJob()
    {
        var locator = new CountingLocator(new DirectoryJobLocator(_cg.PathOf("cpuacct", "slurm", "uid_1000"), CgroupVersion.V1));
        return (new JobCpu(new JobIdentity("slurm", "test", "42", "alice", 1000, "node1"), locator, recovered: false), locator);
    }

    private static Dictionary<string, ulong> Steps(List<(string Step, ulong Ns)> steps) => steps.ToDictionary(s => s.Step, s => s.Ns);

    /// <summary>Whether this file system counts a directory's subdirectories in its link count (ext4, tmpfs, xfs, cgroupfs; not btrfs).</summary>
    private bool LinksCountSubdirectories() =>
        Native.Libc.StatPath(_cg.PathOf(Job)) is { } s && s.Links == 2 + (ulong)Directory.GetDirectories(_cg.PathOf(Job)).Length;

    [Fact]
    public void StepsAreListedOnlyWhenTheJobDirectoryChangesAndAReplacedStepIsFoundInThePeriodItHappens()
    {
        _cg.SetV1Usage(Job, 100);
        _cg.SetV1Usage(Job + "/step_batch", 40);
        _cg.SetV1Usage(Job + "/step_0", 20);
        var (cpu, locator) = NewJob();
        var steps = new List<(string Step, ulong Ns)>();
        bool reuse = LinksCountSubdirectories();

        Assert.Equal(100UL, cpu.Sample(1, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 40, ["0"] = 20 }, Steps(steps));
        Assert.Equal(1, locator.Listings);

        // Nothing created or removed: the known steps are read without listing; an idle step (batch) stays.
        _cg.SetV1Usage(Job, 300);
        _cg.SetV1Usage(Job + "/step_0", 150);
        Assert.Equal(200UL, cpu.Sample(2, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 0, ["0"] = 130 }, Steps(steps));
        Assert.Equal(reuse ? 1 : 2, locator.Listings);

        // A new step: the link count moves, the directory is listed, the step's whole usage is this period's.
        _cg.SetV1Usage(Job, 400);
        _cg.SetV1Usage(Job + "/step_1", 70);
        Assert.Equal(100UL, cpu.Sample(3, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 0, ["0"] = 0, ["1"] = 70 }, Steps(steps));
        Assert.Equal(reuse ? 2 : 3, locator.Listings);

        // One step ends and another starts in the same period (same link count): the ended step's usage stops and its
        // directory is gone, so the job is listed again in this period and the new step is counted now. The ended step's
        // time since its last read is not known (the job's delta less the others' may hold a step made and removed within
        // the period): its part is 0, and it alone is StepGone (flags=8; SnapshotSplitTests).
        _cg.Remove(Job + "/step_1");
        _cg.SetV1Usage(Job + "/step_2", 30);
        _cg.SetV1Usage(Job, 500);
        Assert.Equal(100UL, cpu.Sample(4, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 0, ["0"] = 0, ["2"] = 30, ["1"] = 0 }, Steps(steps));
        Assert.Equal((true, false, false, false), (cpu.StepGone("1"), cpu.StepGone("batch"), cpu.StepGone("0"), cpu.StepGone("2")));
        Assert.Equal(reuse ? 3 : 4, locator.Listings);

        // And it is read without listing afterwards.
        _cg.SetV1Usage(Job + "/step_2", 45);
        _cg.SetV1Usage(Job, 600);
        Assert.Equal(100UL, cpu.Sample(5, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 0, ["0"] = 0, ["2"] = 15 }, Steps(steps));
        Assert.Equal(reuse ? 3 : 5, locator.Listings);
        cpu.Dispose();
    }

    /// <summary>
    /// A job taken back by a restarted sampler: its usage and its steps' so far are baselines taken at its registration,
    /// and a step that starts afterwards is new (its whole usage is its first period's). The first period counted the
    /// job's whole usage since its start, and a later step counted 0 in its first period.
    /// </summary>
    [Fact]
    public void ARecoveredJobCountsFromItsRegistrationAndItsLaterStepsWhole()
    {
        _cg.SetV1Usage(Job, 1000);
        _cg.SetV1Usage(Job + "/step_batch", 900);
        var locator = new DirectoryJobLocator(_cg.PathOf("cpuacct", "slurm", "uid_1000"), CgroupVersion.V1);
        using var cpu = new JobCpu(new JobIdentity("slurm", "test", "42", "alice", 1000, "node1"), locator, recovered: true);
        var steps = new List<(string Step, ulong Ns)>();

        _cg.SetV1Usage(Job, 1100);
        _cg.SetV1Usage(Job + "/step_batch", 1000);
        Assert.Equal(100UL, cpu.Sample(1, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 100 }, Steps(steps));

        _cg.SetV1Usage(Job, 1200);
        _cg.SetV1Usage(Job + "/step_batch", 1050);
        _cg.SetV1Usage(Job + "/step_0", 50);
        Assert.Equal(100UL, cpu.Sample(2, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 50, ["0"] = 50 }, Steps(steps));
    }

    /// <summary>
    /// A job taken back by a restarted sampler whose baseline listing of its steps fails (EACCES: Slurm's locator, the
    /// sampler's thread without CAP_DAC_READ_SEARCH over a 0311 job directory): its steps' usage so far is not known, so
    /// the next listing that succeeds is still their baseline: the batch step's part of that period is 0 (not its whole
    /// 1000 ns since the job began, scaled to the job's 200), and not exact (flags=2 in the node sampler). Until 2026-12-03
    /// the failed listing was "no step", the next one found the batch step new and counted it whole.
    /// </summary>
    [Fact]
    public void ARecoveredJobWhoseBaselineListingFailsTakesItsStepsBaselineAtTheNextListing()
    {
        _cg.SetV1Usage(Job, 1000);
        _cg.SetV1Usage(Job + "/step_batch", 900);
        var locator = new Alumet.Hpc.Schedulers.Slurm.SlurmCgroupLocator(_cg.Root, "node1");
        var identity = new JobIdentity("slurm", "test", "42", "alice", 1000, "node1");
        string dir = _cg.PathOf(Job);
        var mode = File.GetUnixFileMode(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        JobCpu? made = null;
        WithoutDacOverride.Run(() => made = new JobCpu(identity, locator, recovered: true));
        File.SetUnixFileMode(dir, mode);
        using var cpu = made!;
        var steps = new List<(string Step, ulong Ns)>();

        _cg.SetV1Usage(Job, 1200);
        _cg.SetV1Usage(Job + "/step_batch", 1000);
        Assert.Equal(200UL, cpu.Sample(1, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 0 }, Steps(steps));
        Assert.True(cpu.StepsNotExact);

        _cg.SetV1Usage(Job, 1300);
        _cg.SetV1Usage(Job + "/step_batch", 1050);
        Assert.Equal(100UL, cpu.Sample(2, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 50 }, Steps(steps));
        Assert.False(cpu.StepsNotExact);
    }

    [Fact]
    public void AJobDirectoryHoldingSomethingElseThanStepsIsListedEveryPeriod()
    {
        _cg.SetV1Usage(Job, 100);
        _cg.SetV1Usage(Job + "/step_batch", 40);
        Directory.CreateDirectory(_cg.PathOf(Job, "not_a_step")); // the link count no longer says "steps only"
        var (cpu, locator) = NewJob();
        var steps = new List<(string Step, ulong Ns)>();
        cpu.Sample(1, steps);
        _cg.SetV1Usage(Job + "/step_batch", 50);
        _cg.SetV1Usage(Job, 200);
        Assert.Equal(100UL, cpu.Sample(2, steps));
        Assert.Equal(new Dictionary<string, ulong> { ["batch"] = 10 }, Steps(steps));
        Assert.Equal(2, locator.Listings);
        cpu.Dispose();
    }
}
