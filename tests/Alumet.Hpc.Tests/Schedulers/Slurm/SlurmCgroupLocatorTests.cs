using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Schedulers.Slurm;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>Generated cgroup trees in the layouts Slurm really creates (see SlurmCgroupLocator).</summary>
public sealed class SlurmCgroupLocatorTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("alumet-slurm-cg-").FullName;
    private string _sys => Path.Combine(_tmp, "cgroup");
    private static readonly JobIdentity Job42 = new("slurm", "lab", "42", "alice", 1001, "n1");

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Cg(string rel) => Path.Combine(_sys, rel);

    private string V1Job(string ctrl, string slurmDir, int uid, string id, params string[] steps)
    {
        string dir = Cg($"{ctrl}/{slurmDir}/uid_{uid}/job_{id}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "cpuacct.usage"), "0\n");
        foreach (string s in steps)
        {
            Directory.CreateDirectory(Path.Combine(dir, "step_" + s));
            File.WriteAllText(Path.Combine(dir, "step_" + s, "cpuacct.usage"), "0\n");
        }
        return dir;
    }

    private string V2Job(string scope, string name, params string[] steps)
    {
        Directory.CreateDirectory(Cg(""));
        File.WriteAllText(Cg("cgroup.controllers"), "cpuset cpu io memory pids\n");
        string dir = Cg($"system.slice/{scope}/{name}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "cpu.stat"), "usage_usec 0\n");
        foreach (string s in steps)
        {
            Directory.CreateDirectory(Path.Combine(dir, "step_" + s, "user", "task_0"));
            File.WriteAllText(Path.Combine(dir, "step_" + s, "cpu.stat"), "usage_usec 0\n");
        }
        return dir;
    }

    [Theory]
    [InlineData("cpuacct", "slurm_n1")]   // Debian build (multiple-slurmd support)
    [InlineData("cpuacct", "slurm")]      // other builds
    [InlineData("cpu,cpuacct", "slurm")]  // combined cpu+cpuacct mount
    [InlineData("cpuacct,cpu", "slurm_n1")]
    [InlineData("cpuset,cpu,cpuacct", "slurm")] // a co-mounted hierarchy: found since the locators share CgroupHierarchy (OAR's rule)
    public void FindsV1JobCgroup(string ctrl, string slurmDir)
    {
        string dir = V1Job(ctrl, slurmDir, 1001, "42");
        V1Job(ctrl, slurmDir, 1001, "420"); // a prefix-sharing neighbour must not be confused with job 42

        JobCgroup? cg = new SlurmCgroupLocator(_sys, "n1").Find(Job42);

        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V1), cg);
    }

    [Fact]
    public void V1IgnoresOtherNodesDirectoryAndOtherUid()
    {
        V1Job("cpuacct", "slurm_n2", 1001, "42"); // another slurmd's tree (multiple-slurmd host)
        V1Job("cpuacct", "slurm_n1", 1002, "42"); // wrong uid
        Assert.Null(new SlurmCgroupLocator(_sys, "n1").Find(Job42));
    }

    [Fact]
    public void V1DirectoryWithoutCpuacctFileIsNotAJob()
    {
        Directory.CreateDirectory(Cg("cpuacct/slurm_n1/uid_1001/job_42")); // being created / being removed
        Assert.Null(new SlurmCgroupLocator(_sys, "n1").Find(Job42));
    }

    [Fact]
    public void FindsV2JobCgroup()
    {
        string dir = V2Job("slurmstepd.scope", "job_42");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), new SlurmCgroupLocator(_sys, "n1").Find(Job42));
    }

    [Fact]
    public void FindsV2MultipleSlurmdScope()
    {
        string dir = V2Job("n1_slurmstepd.scope", "job_42");
        V2Job("n2_slurmstepd.scope", "job_43");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), loc.Find(Job42));
        Assert.Equal(new[] { "42" }, loc.EnumerateJobs().Select(j => j.JobId));
    }

    [Fact]
    public void V2WithoutCgroupControllersIsNotV2()
    {
        string dir = V2Job("slurmstepd.scope", "job_42");
        File.Delete(Cg("cgroup.controllers"));
        Assert.Null(new SlurmCgroupLocator(_sys, "n1").Find(Job42));
    }

    [Fact]
    public void FindsSluidNamedV2CgroupAndReportsTheNumericId()
    {
        string dir = V2Job("slurmstepd.scope", "job_s0E4QZK1T3WXA");
        V2Job("slurmstepd.scope", "job_s0E4QZK1T3WXB"); // another job, known only by its SLUID

        var loc = new SlurmCgroupLocator(_sys, "n1", "s0E4QZK1T3WXA");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), loc.Find(Job42));
        Assert.Equal(new[] { "42", "s0E4QZK1T3WXB" }, loc.EnumerateJobs().Select(j => j.JobId));
    }

    [Fact]
    public void SluidPairedAtCreationIsReportedUnderTheJobIdBeforeAnyFind()
    {
        string dir = V2Job("slurmstepd.scope", "job_s0E4QZK1T3WXA");
        var loc = SlurmCgroupLocator.Create(_sys, Job42 with { Node = "n1" }, "s0E4QZK1T3WXA");
        Assert.Equal(new[] { new JobCgroup("42", dir, CgroupVersion.V2) }, loc.EnumerateJobs());
    }

    [Fact]
    public void SluidGivenButNumericDirectoryUsed()
    {
        // Slurm 26.05 with CgroupJobIdPaths=yes, or < 26.05 that already sets SLURM_JOB_SLUID.
        string dir = V2Job("slurmstepd.scope", "job_42");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), new SlurmCgroupLocator(_sys, "n1", "s0E4QZK1T3WXA").Find(Job42));
    }

    [Fact]
    public void MissingTreeGivesNullAndNoJobs()
    {
        var loc = new SlurmCgroupLocator(_sys, "n1");
        Assert.Null(loc.Find(Job42));
        Assert.Empty(loc.EnumerateJobs());
        Assert.Null(new SlurmCgroupLocator(Path.Combine(_sys, "nope"), "n1").Find(Job42));
    }

    [Fact]
    public void EnumeratesAllJobsOfTheNodeOnceEach()
    {
        V1Job("cpu,cpuacct", "slurm_n1", 1001, "42");
        V1Job("cpu,cpuacct", "slurm_n1", 1002, "7");
        V1Job("cpu,cpuacct", "slurm", 0, "9");
        V1Job("cpu,cpuacct", "slurm_n2", 0, "8"); // another slurmd on this host: not ours
        // The same hierarchy again through the single-controller name (a symlink on most distributions).
        Directory.CreateSymbolicLink(Cg("cpuacct"), "cpu,cpuacct");
        Directory.CreateDirectory(Cg("cpu,cpuacct/slurm_n1/uid_1001/job_43")); // no cpuacct.usage: skipped
        Directory.CreateDirectory(Cg("cpu,cpuacct/slurm_n1/uid_1001/other"));

        var jobs = new SlurmCgroupLocator(_sys, "n1").EnumerateJobs();

        Assert.Equal(new[]
        {
            new JobCgroup("9", Cg("cpuacct/slurm/uid_0/job_9"), CgroupVersion.V1),
            new JobCgroup("42", Cg("cpuacct/slurm_n1/uid_1001/job_42"), CgroupVersion.V1),
            new JobCgroup("7", Cg("cpuacct/slurm_n1/uid_1002/job_7"), CgroupVersion.V1),
        }, jobs);
    }

    [Fact]
    public void EnumeratesV1Steps()
    {
        V1Job("cpuacct", "slurm_n1", 1001, "42", "batch", "extern", "0", "1");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        JobCgroup job = loc.Find(Job42)!;

        var steps = loc.EnumerateSteps(job)!;

        Assert.Equal(new[] { "0", "1", "batch", "extern" }, steps.Select(s => s.Step));
        Assert.Equal(Path.Combine(job.Directory, "step_batch"), steps[2].Directory);
        Assert.All(steps, s => Assert.Equal(("42", CgroupVersion.V1), (s.JobId, s.Version)));
    }

    [Fact]
    public void EnumeratesV2Steps()
    {
        V2Job("slurmstepd.scope", "job_42", "extern", "0");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        var steps = loc.EnumerateSteps(loc.Find(Job42)!)!;
        Assert.Equal(new[] { ("0", CgroupVersion.V2), ("extern", CgroupVersion.V2) }, steps.Select(s => (s.Step, s.Version)));
    }

    [Fact]
    public void StepsOfAVanishedJobAreEmpty()
    {
        string dir = V1Job("cpuacct", "slurm_n1", 1001, "42", "0");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        JobCgroup job = loc.Find(Job42)!;
        Directory.Delete(dir, recursive: true);
        Assert.Equal(Array.Empty<StepCgroup>(), loc.EnumerateSteps(job)); // gone: none (not null, "could not be listed")
        Assert.Null(loc.Find(Job42));
    }
}
