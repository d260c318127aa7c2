using Alumet.Hpc.Jobs;
using Alumet.Hpc.Schedulers.Slurm;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

public sealed class SlurmJobParseTests
{
    // What slurmd 22.05 really passes to a Prolog (see labs observations), minus the irrelevant keys.
    private static Dictionary<string, string> Env(params (string Key, string? Value)[] overrides)
    {
        var env = new Dictionary<string, string>
        {
            ["SLURM_JOB_ID"] = "1234",
            ["SLURM_JOBID"] = "1234",
            ["SLURM_JOB_UID"] = "1001",
            ["SLURM_JOB_GID"] = "1002",
            ["SLURM_JOB_USER"] = "alice",
            ["SLURMD_NODENAME"] = "node-01",
            ["SLURM_CLUSTER_NAME"] = "lab",
            ["SLURM_SCRIPT_CONTEXT"] = "prolog_slurmd",
            ["SLURM_JOB_PARTITION"] = "debug; rm -rf /", // not used: must not matter
        };
        foreach (var (k, v) in overrides)
            if (v is null) env.Remove(k); else env[k] = v;
        return env;
    }

    [Fact]
    public void ParsesAPlainJob()
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env());
        Assert.Null(p.Error);
        Assert.Equal(new JobIdentity("slurm", "lab", "1234", "alice", 1001, "node-01"), p.Job!.Identity);
        Assert.Equal(1002, p.Job.Gid);
        Assert.True(p.Job.Gpus.IsEmpty);
        Assert.Null(p.Job.Sluid);
    }

    [Fact]
    public void ParsesGpusAndSluid()
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env(("SLURM_JOB_GPUS", "2,3"), ("CUDA_VISIBLE_DEVICES", "0,1"), ("SLURM_JOB_SLUID", "s0E4QZK1T3WXA")));
        Assert.Equal(new[] { "2", "3" }, p.Job!.Gpus.Entries);
        Assert.Equal("s0E4QZK1T3WXA", p.Job.Sluid);
        Assert.Equal("s0E4QZK1T3WXA", p.Job.Identity.RunId); // the SLUID names the run on every node
        var reg = SamplerLauncher.Registration(new SamplerLaunch(p.Job.Identity, null, p.Job.Gpus.Entries, p.Job.Sluid));
        Assert.Equal("s0E4QZK1T3WXA", JobRegistration.Parse(reg.ToLine(), out _)!.Job.RunId);
    }

    [Fact]
    public void AJobNameInTheEnvironmentReachesTheSamplerAsOneSafeToken()
    {
        // slurmd 22.05 gives no SLURM_JOB_NAME (prep_script_slurmd.c); a wrapper or a later Slurm may. A hostile name
        // (sbatch -J) must stay one value in the registration line the prolog sends the node sampler (and the sampler
        // keeps in the job's state dir): never another key, never a second line.
        const string name = "@/etc/shadow uid=0 run=x\nregister scheduler=slurm";
        SlurmJobParse p = SlurmHook.ParseJob(Env(("SLURM_JOB_NAME", name)));
        Assert.Equal(name, p.Job!.Identity.JobName);
        string line = SamplerLauncher.Registration(new SamplerLaunch(p.Job.Identity, null, [], null)).ToLine();
        Assert.DoesNotContain('\n', line);
        var parsed = JobRegistration.Parse(line, out string? error);
        Assert.Null(error);
        Assert.Equal(name, parsed!.Job.JobName);
        Assert.Equal(1001, parsed.Job.Uid);
        Assert.Equal("", SlurmHook.ParseJob(Env()).Job!.Identity.JobName);
        Assert.DoesNotContain(" name=", SamplerLauncher.Registration(new SamplerLaunch(SlurmHook.ParseJob(Env()).Job!.Identity, null, [], null)).ToLine());
        Assert.Equal(new string('x', JobIdentity.MaxJobName - 3) + "...",
            SlurmHook.ParseJob(Env(("SLURM_JOB_NAME", new string('x', 5000))))!.Job!.Identity.JobName);
    }

    [Fact]
    public void WithoutSluidThePrologNamesTheRunByItsStartTime()
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env());
        Assert.Equal("", p.Job!.Identity.RunId);
        var before = DateTime.UtcNow;
        var reg = SamplerLauncher.Registration(new SamplerLaunch(p.Job.Identity, null, [], null));
        string run = JobRegistration.Parse(reg.ToLine(), out _)!.Job.RunId;
        Assert.Matches(@"^\d{8}T\d{9}Z$", run);
        var t = DateTime.ParseExact(run, RunId.StartTimeFormat, System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal);
        Assert.InRange(t, before.AddMilliseconds(-1), DateTime.UtcNow);
    }

    [Fact]
    public void MigUuidsInCudaVisibleDevicesDoNotRefuseAJobWithSlurmJobGpus()
    {
        // slurmd's prolog env on a MIG node (AutoDetect=nvml): the vendor variable holds the MIG UUID, Slurm's own the index.
        SlurmJobParse p = SlurmHook.ParseJob(Env(("SLURM_JOB_GPUS", "1"), ("CUDA_VISIBLE_DEVICES", "MIG-4f1c5b8e-0d2a-5c3e-9b7a-1e2d3c4b5a69")));
        Assert.Null(p.Error);
        Assert.Equal(new[] { "1" }, p.Job!.Gpus.Entries);
    }

    [Fact]
    public void FallsBackToCudaVisibleDevicesAndOldJobIdName()
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env(("SLURM_JOB_ID", null), ("SLURM_JOBID", "77"), ("CUDA_VISIBLE_DEVICES", "1")));
        Assert.Equal("77", p.Job!.Identity.JobId);
        Assert.Equal(new[] { "1" }, p.Job.Gpus.Entries);
    }

    [Fact]
    public void ClusterFromConfigWinsThenEnvThenLocal()
    {
        Assert.Equal("prod", SlurmHook.ParseJob(Env(), "prod").Job!.Identity.Cluster);
        Assert.Equal("local", SlurmHook.ParseJob(Env(("SLURM_CLUSTER_NAME", null))).Job!.Identity.Cluster);
    }

    [Theory]
    [InlineData("SLURM_JOB_ID", "12a", "SLURM_JOB_ID \"12a\" is not a job id (digits)")]
    [InlineData("SLURM_JOB_ID", "../1", "SLURM_JOB_ID \"../1\" is not a job id (digits)")]
    [InlineData("SLURM_JOB_ID", null, "SLURM_JOB_ID (unset) is not a job id (digits)")]
    [InlineData("SLURM_JOB_ID", "-1", "SLURM_JOB_ID \"-1\" is not a job id (digits)")]
    [InlineData("SLURM_JOB_UID", "1001 ", "SLURM_JOB_UID \"1001 \" is not a uid (digits)")]
    [InlineData("SLURM_JOB_UID", "99999999999", "SLURM_JOB_UID \"99999999999\" is not a uid (digits)")]
    [InlineData("SLURM_JOB_GID", "", "SLURM_JOB_GID \"\" is not a gid (digits)")]
    [InlineData("SLURM_JOB_USER", "al ice", "SLURM_JOB_USER \"al ice\" is not a user name")]
    [InlineData("SLURM_JOB_USER", "-rf", "SLURM_JOB_USER \"-rf\" is not a user name")]
    [InlineData("SLURM_JOB_USER", "a/b", "SLURM_JOB_USER \"a/b\" is not a user name")]
    [InlineData("SLURM_JOB_USER", "$(id)", "SLURM_JOB_USER \"$(id)\" is not a user name")]
    [InlineData("SLURM_JOB_USER", "bob\n", "SLURM_JOB_USER \"bob\\x0a\" is not a user name")]
    [InlineData("SLURMD_NODENAME", null, "SLURMD_NODENAME (unset) is not a node name")]
    [InlineData("SLURMD_NODENAME", "n1;reboot", "SLURMD_NODENAME \"n1;reboot\" is not a node name")]
    [InlineData("SLURM_CLUSTER_NAME", "a b", "SLURM_CLUSTER_NAME \"a b\" is not a cluster name")]
    [InlineData("SLURM_JOB_GPUS", "0,1;reboot", "SLURM_JOB_GPUS \"0,1;reboot\" is not a GPU list: entry '1;reboot' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id")]
    [InlineData("SLURM_JOB_GPUS", "gpu=0", "SLURM_JOB_GPUS \"gpu=0\" is not a GPU list: entry 'gpu=0' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id")]
    [InlineData("CUDA_VISIBLE_DEVICES", "0 1", "CUDA_VISIBLE_DEVICES \"0 1\" is not a GPU list: entry '0 1' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id")]
    [InlineData("SLURM_JOB_GPUS", "0-99", "SLURM_JOB_GPUS \"0-99\" is not a GPU list: it names more than 64 GPUs")]
    [InlineData("SLURM_JOB_GPUS", "GPU-../../x", "SLURM_JOB_GPUS \"GPU-../../x\" is not a GPU list: entry 'GPU-../../x' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id")]
    [InlineData("SLURM_JOB_SLUID", "s0/../x", "SLURM_JOB_SLUID \"s0/../x\" is not a SLUID (letters and digits)")]
    public void RefusesBadValuesWithOneClearLine(string key, string? value, string expected)
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env((key, value), key == "SLURM_JOB_ID" ? ("SLURM_JOBID", null) : (key, value)));
        Assert.Null(p.Job);
        Assert.Equal(expected, p.Error);
    }

    [Theory]
    [InlineData("_svc.build-1")]
    [InlineData("HOST01$")]
    [InlineData("a")]
    public void AcceptsUnusualButSafeUserNames(string user)
    {
        Assert.Equal(user, SlurmHook.ParseJob(Env(("SLURM_JOB_USER", user))).Job!.Identity.User);
    }

    [Theory]
    [InlineData("alice@example.org")] // SSSD fully qualified: refused, like `alumet-hpc sample --user`
    [InlineData("1alice")]
    [InlineData(".hidden")]
    [InlineData("$")]
    [InlineData("a$b")]
    public void RefusesUserNamesTheSamplerWouldRefuse(string user)
    {
        Assert.Null(SlurmHook.ParseJob(Env(("SLURM_JOB_USER", user))).Job);
    }

    [Fact]
    public void EmptyGpuListMeansNone()
    {
        Assert.True(SlurmHook.ParseJob(Env(("SLURM_JOB_GPUS", ""))).Job!.Gpus.IsEmpty);
    }

    // The rules on which the prolog's strict index list and the GPU allocation parser disagreed, now one parser
    // (GpuAllocation.TryParse): each of these refused the whole job (not measured) before.

    [Fact]
    public void NoDevFilesMeansNoGpuNotARefusedJob()
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env(("CUDA_VISIBLE_DEVICES", "NoDevFiles")));
        Assert.Null(p.Error);
        Assert.True(p.Job!.Gpus.IsEmpty);
    }

    [Fact]
    public void RangesAreExpanded()
    {
        Assert.Equal(new[] { "0", "1", "2", "5" }, SlurmHook.ParseJob(Env(("SLURM_JOB_GPUS", "0-2,5"))).Job!.Gpus.Entries);
    }

    [Fact]
    public void UuidsAndBusIdsAreGpusToo()
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env(("SLURM_JOB_GPUS", "GPU-8f3c0000-1111-2222-3333-444455556666,0000:3b:00.0")));
        Assert.Null(p.Error);
        Assert.Equal(new[] { "GPU-8f3c0000-1111-2222-3333-444455556666", "0000:3b:00.0" }, p.Job!.Gpus.Entries);
    }

    [Fact]
    public void BlanksAndEmptyEntriesAreSkippedAndTheRegistrationCarriesTheCanonicalList()
    {
        SlurmJobParse p = SlurmHook.ParseJob(Env(("CUDA_VISIBLE_DEVICES", " 0, 1,,1 ")));
        Assert.Equal(new[] { "0", "1" }, p.Job!.Gpus.Entries);
        var reg = SamplerLauncher.Registration(new SamplerLaunch(p.Job.Identity, null, p.Job.Gpus.Entries, null));
        Assert.Equal("0,1", JobRegistration.Parse(reg.ToLine(), out _)!.Gpus);
    }

    [Fact]
    public void ABlankSlurmJobGpusFallsBackToCudaVisibleDevices()
    {
        Assert.Equal(new[] { "3" }, SlurmHook.ParseJob(Env(("SLURM_JOB_GPUS", " "), ("CUDA_VISIBLE_DEVICES", "3"))).Job!.Gpus.Entries);
    }
}
