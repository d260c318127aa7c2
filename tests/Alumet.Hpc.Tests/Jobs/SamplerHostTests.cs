using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>No orphans: a sampler whose job is gone, never appears, or outlives its bound ends itself and says why.</summary>
public class SamplerHostTests : IDisposable
{
    private readonly PowercapTree _powercap = PowercapTree.Standard(1);
    private readonly ProcTree _proc = new();
    private readonly CgroupTree _cgroups = new();
    private readonly TempTree _dir = new("host");
    private readonly JobIdentity _job = new("slurm", "c", "77", "alice", 1000, "n1");

    public void Dispose()
    {
        _powercap.Dispose(); _proc.Dispose(); _cgroups.Dispose(); _dir.Dispose();
    }

    private AlumetConfig Config()
    {
        var cfg = new AlumetConfig();
        cfg.Paths.PowercapRoot = _powercap.Root;
        cfg.Paths.ProcfsRoot = _proc.Root;
        cfg.Paths.StateDir = _dir.PathOf("state");
        cfg.Paths.DataDir = _dir.PathOf("data");
        cfg.Paths.Database = _dir.PathOf("accounting.db");
        cfg.Sources.Nvml = "off";
        cfg.Sampler.RaplHz = 100;
        cfg.Sampler.StoragePeriodMs = 100;
        cfg.Sampler.AttributionPeriodMs = 100;
        cfg.Sampler.FlushIntervalMs = 100;
        return cfg;
    }

    private (JobFinalizer.Outcome? Outcome, TimeSpan Took) Run(AlumetConfig cfg, Action? during = null)
    {
        var locator = new DirectoryJobLocator(_cgroups.PathOf("cpuacct", "slurm", "uid_1000"), CgroupVersion.V1);
        using var host = new SamplerHost(cfg, new SamplerRequest(_job, false, locator, new HashSet<string>()), SourceFactory.Create(cfg, null));
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(20)); // the test fails rather than hangs
        var sw = System.Diagnostics.Stopwatch.StartNew();
        JobFinalizer.Outcome? outcome = null;
        var t = new Thread(() => outcome = host.Run(safety.Token));
        t.Start();
        during?.Invoke();
        t.Join();
        Assert.False(safety.IsCancellationRequested, "the watchdog did not end the sampler");
        return (outcome, sw.Elapsed);
    }

    [Fact]
    public void JobCgroupGoneLongerThanTheGraceEndsThePartialRow()
    {
        var cfg = Config();
        cfg.Sampler.JobGoneGraceS = 0.5;
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_77", 0);
        var (outcome, _) = Run(cfg, () =>
        {
            Thread.Sleep(600);
            _cgroups.Remove("cpuacct/slurm/uid_1000/job_77"); // the job ended, no epilog came
        });
        Assert.NotNull(outcome);
        Assert.Equal(JobStatus.Partial, outcome!.Status);
        Assert.Contains("job cgroup gone", outcome.Reason);
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        Assert.Equal(JobStatus.Partial, Assert.Single(db.GetJob("77")).Status);
    }

    [Fact]
    public void JobCgroupThatNeverAppearsEndsTheSampler()
    {
        var cfg = Config();
        cfg.Sampler.CgroupWaitS = 0.5;
        var (outcome, took) = Run(cfg);
        Assert.Contains("job cgroup not found within 0.5 s", outcome!.Reason);
        Assert.True(took < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void MaximumLifetimeEndsTheSampler()
    {
        var cfg = Config();
        cfg.Sampler.MaxLifetimeH = 0.5 / 3600; // half a second
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_77", 0);
        var (outcome, _) = Run(cfg);
        Assert.Equal(JobStatus.Partial, outcome!.Status);
        Assert.Contains("maximum lifetime", outcome.Reason);
    }
}
