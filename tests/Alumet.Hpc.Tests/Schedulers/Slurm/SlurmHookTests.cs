using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Schedulers.Slurm;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>Log is process-global: tests that read it run one at a time.</summary>
[CollectionDefinition("Log", DisableParallelization = true)]
public sealed class LogCollection;

[Collection("Log")]
public sealed class SlurmHookTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("alumet-slurm-hook-").FullName;
    private string LogFile => Path.Combine(_dir, "alumet.log");

    public SlurmHookTests() => Log.Configure(LogFile, "alumet-hpc", syslog: false, stderr: false);

    public void Dispose()
    {
        Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        Directory.Delete(_dir, recursive: true);
    }

    private sealed class FakeControl : ISamplerControl
    {
        public List<string> Calls { get; } = new();
        public Exception? Throw { get; init; }
        public bool Ok { get; init; } = true;

        public (bool, string) Start(SlurmJob job, AlumetConfig config, string? configPath)
        {
            Calls.Add($"start {job.Identity.JobId} {job.Identity.User} {job.Identity.Uid} gpus={job.Gpus.List} cfg={configPath}");
            if (Throw is not null) throw Throw;
            return (Ok, "sampler started (pid 99)");
        }

        public (bool, string) StopAndFinalize(SlurmJob job, AlumetConfig config)
        {
            Calls.Add($"stop {job.Identity.JobId}");
            if (Throw is not null) throw Throw;
            return (Ok, "finalized complete");
        }
    }

    private static Dictionary<string, string> Env(string context, params (string K, string V)[] extra)
    {
        var env = new Dictionary<string, string>
        {
            ["SLURM_JOB_ID"] = "1234", ["SLURM_JOB_UID"] = "1001", ["SLURM_JOB_GID"] = "1002",
            ["SLURM_JOB_USER"] = "alice", ["SLURMD_NODENAME"] = "n1", ["SLURM_CLUSTER_NAME"] = "lab",
            ["SLURM_SCRIPT_CONTEXT"] = context,
        };
        foreach (var (k, v) in extra) env[k] = v;
        return env;
    }

    // The log line without its "<timestamp> alumet-hpc[pid] " prefix and "(x.y ms)" suffix.
    private string[] LogMessages() => File.ReadAllLines(LogFile)
        .Select(l => l[(l.IndexOf("] ", StringComparison.Ordinal) + 2)..])
        .Select(l => l[..l.LastIndexOf(" (", StringComparison.Ordinal)])
        .ToArray();

    [Fact]
    public void PrologStartsTheSamplerOnceAndLogsIt()
    {
        var control = new FakeControl();
        int rc = SlurmHook.Run("prolog_slurmd", Env("prolog_slurmd", ("SLURM_JOB_GPUS", "1,3")), new AlumetConfig(), "/etc/a.toml", control);
        Assert.Equal(0, rc);
        Assert.Equal(new[] { "start 1234 alice 1001 gpus=1,3 cfg=/etc/a.toml" }, control.Calls);
        Assert.Equal(new[] { "info: slurm prolog job 1234 on n1: sampler started (pid 99)" }, LogMessages());
    }

    [Fact]
    public void BadEnvironmentStartsNothingAndStillExitsZero()
    {
        var control = new FakeControl();
        int rc = SlurmHook.Run("prolog", Env("prolog_slurmd", ("SLURM_JOB_USER", "x;reboot")), new AlumetConfig(), null, control);
        Assert.Equal(0, rc);
        Assert.Empty(control.Calls);
        Assert.Equal(new[] { "error: slurm prolog: refused: SLURM_JOB_USER \"x;reboot\" is not a user name; nothing done" }, LogMessages());
    }

    /// <summary>
    /// Whatever escapes the hook is one line of ours (ErrorText), never the exception's type name: on 26325a9
    /// "slurm epilog: failed: InvalidOperationException: boom", and "…: IOException: " before an empty message.
    /// </summary>
    [Fact]
    public void AnExceptionIsLoggedInOurWordsAndExitIsZero()
    {
        var control = new FakeControl { Throw = new InvalidOperationException("boom") };
        Assert.Equal(0, SlurmHook.Run("epilog", Env("epilog_slurmd"), new AlumetConfig(), null, control));
        Assert.Equal(new[] { "stop 1234" }, control.Calls);
        Assert.Equal(new[] { "error: slurm epilog: failed: boom" }, LogMessages());

        Assert.Equal(0, SlurmHook.Run("prolog", Env("prolog_slurmd"), new AlumetConfig(), null, new FakeControl { Throw = new InvalidOperationException("") }));
        Assert.Equal("error: slurm prolog: failed: an unexpected error with no description (code 0x80131509): report it with this line", LogMessages()[1]);
    }

    [Fact]
    public void ContextDisagreeingWithSlurmIsRefused()
    {
        var control = new FakeControl();
        Assert.Equal(0, SlurmHook.Run("epilog", Env("prolog_slurmd"), new AlumetConfig(), null, control));
        Assert.Empty(control.Calls);
        Assert.Equal(new[] { "error: slurm epilog: refused: called as epilog but SLURM_SCRIPT_CONTEXT is prolog_slurmd: check Prolog=/Epilog= in slurm.conf; nothing done" }, LogMessages());
    }

    [Fact]
    public void UnknownContextIsRefused()
    {
        var control = new FakeControl();
        Assert.Equal(0, SlurmHook.Run("prolog_slurmctld", Env("prolog_slurmctld"), new AlumetConfig(), null, control));
        Assert.Empty(control.Calls);
        Assert.Equal(new[] { "error: slurm hook: refused: unknown hook context \"prolog_slurmctld\" (expected prolog or epilog); nothing done" }, LogMessages());
    }

    [Fact]
    public void ConfiguredClusterNameIsUsed()
    {
        var config = new AlumetConfig();
        config.Cluster.Name = "bad name";
        var control = new FakeControl();
        SlurmHook.Run("prolog", Env("prolog_slurmd"), config, null, control);
        Assert.Empty(control.Calls);
        Assert.Equal(new[] { "error: slurm prolog: refused: cluster name \"bad name\" (config) is not a cluster name; nothing done" }, LogMessages());
    }

    [Fact]
    public void AFailedStartIsLoggedAsAnErrorAndExitIsZero()
    {
        var control = new FakeControl { Ok = false };
        Assert.Equal(0, SlurmHook.Run("prolog", Env("prolog_slurmd"), new AlumetConfig(), null, control));
        Assert.Equal(new[] { "error: slurm prolog job 1234 on n1: sampler started (pid 99)" }, LogMessages());
    }

    [Fact]
    public void EpilogStopsTheJobsSampler()
    {
        var control = new FakeControl();
        Assert.Equal(0, SlurmHook.Run("epilog_slurmd", Env("epilog_slurmd"), new AlumetConfig(), null, control));
        Assert.Equal(new[] { "stop 1234" }, control.Calls);
        Assert.Equal(new[] { "info: slurm epilog job 1234 on n1: finalized complete" }, LogMessages());
    }
}
