using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Schedulers.Slurm;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>Generated cgroup trees in the layouts Slurm really creates (see SlurmCgroupLocator).</summary>
public sealed class SlurmCgroupLocatorTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("alumet-slurm-cg-").FullName;
    private string _sys => Path.Combine(_tmp, "cgroup");
    private static readonly JobIdentity Job42 = new("slurm", "lab", "42", "alice", 1001, "n1");

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Cg(string rel) => Path.Combine(_sys, rel);

    /// <summary>What <paramref name="loc"/> says of job 42 where it finds no cgroup of it (its lookup returns null).</summary>
    private static Presence NotFound(SlurmCgroupLocator loc)
    {
        Assert.Null(loc.Find(Job42, out var presence));
        return presence;
    }

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

        JobCgroup? cg = new SlurmCgroupLocator(_sys, "n1").Find(Job42, out _);

        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V1), cg);
    }

    [Fact]
    public void V1IgnoresOtherNodesDirectoryAndOtherUid()
    {
        V1Job("cpuacct", "slurm_n2", 1001, "42"); // another slurmd's tree (multiple-slurmd host)
        V1Job("cpuacct", "slurm_n1", 1002, "42"); // wrong uid
        Assert.Equal(Presence.Gone, NotFound(new SlurmCgroupLocator(_sys, "n1")));
    }

    [Fact]
    public void V1DirectoryWithoutCpuacctFileIsNotAJob()
    {
        Directory.CreateDirectory(Cg("cpuacct/slurm_n1/uid_1001/job_42")); // being created / being removed
        Assert.Equal(Presence.Gone, NotFound(new SlurmCgroupLocator(_sys, "n1")));
    }

    [Fact]
    public void FindsV2JobCgroup()
    {
        string dir = V2Job("slurmstepd.scope", "job_42");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), new SlurmCgroupLocator(_sys, "n1").Find(Job42, out _));
    }

    [Fact]
    public void FindsV2MultipleSlurmdScope()
    {
        string dir = V2Job("n1_slurmstepd.scope", "job_42");
        V2Job("n2_slurmstepd.scope", "job_43");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), loc.Find(Job42, out _));
    }

    [Fact]
    public void V2WithoutCgroupControllersIsNotV2()
    {
        string dir = V2Job("slurmstepd.scope", "job_42");
        File.Delete(Cg("cgroup.controllers"));
        Assert.Equal(Presence.Gone, NotFound(new SlurmCgroupLocator(_sys, "n1")));
    }

    [Fact]
    public void FindsSluidNamedV2CgroupAndReportsTheNumericId()
    {
        string dir = V2Job("slurmstepd.scope", "job_s0E4QZK1T3WXA");
        V2Job("slurmstepd.scope", "job_s0E4QZK1T3WXB"); // another job, known only by its SLUID

        var loc = new SlurmCgroupLocator(_sys, "n1", "s0E4QZK1T3WXA");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), loc.Find(Job42, out _));
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), SlurmCgroupLocator.Create(_sys, Job42 with { Node = "n1" }, "s0E4QZK1T3WXA").Find(Job42, out _));
    }

    [Fact]
    public void SluidGivenButNumericDirectoryUsed()
    {
        // Slurm 26.05 with CgroupJobIdPaths=yes, or < 26.05 that already sets SLURM_JOB_SLUID.
        string dir = V2Job("slurmstepd.scope", "job_42");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), new SlurmCgroupLocator(_sys, "n1", "s0E4QZK1T3WXA").Find(Job42, out _));
    }

    [Fact]
    public void MissingTreeGivesNullAndNoJobs()
    {
        var loc = new SlurmCgroupLocator(_sys, "n1");
        Assert.Equal(Presence.Gone, NotFound(loc));
        Assert.Equal(Presence.Gone, NotFound(new SlurmCgroupLocator(Path.Combine(_sys, "nope"), "n1")));
    }

    /// <summary>
    /// The v1 Slurm directories of every hierarchy that carries cpuacct, through either of its names, this node's only, the
    /// job's uid only; a job directory without <c>cpuacct.usage</c> is none (being made, or removed).
    /// </summary>
    [Fact]
    public void FindsEachJobOfTheNodeThroughAnyNameOfItsHierarchy()
    {
        V1Job("cpu,cpuacct", "slurm_n1", 1001, "42");
        V1Job("cpu,cpuacct", "slurm_n1", 1002, "7");
        V1Job("cpu,cpuacct", "slurm", 0, "9");
        V1Job("cpu,cpuacct", "slurm_n2", 0, "8"); // another slurmd on this host: not ours
        // The same hierarchy again through the single-controller name (a symlink on most distributions).
        Directory.CreateSymbolicLink(Cg("cpuacct"), "cpu,cpuacct");
        Directory.CreateDirectory(Cg("cpu,cpuacct/slurm_n1/uid_1001/job_43")); // no cpuacct.usage: none
        var loc = new SlurmCgroupLocator(_sys, "n1");
        JobCgroup? Of(string id, int uid) => loc.Find(Job42 with { JobId = id, Uid = uid }, out _);

        Assert.Equal(new JobCgroup("9", Cg("cpuacct/slurm/uid_0/job_9"), CgroupVersion.V1), Of("9", 0));
        Assert.Equal(new JobCgroup("42", Cg("cpuacct/slurm_n1/uid_1001/job_42"), CgroupVersion.V1), Of("42", 1001));
        Assert.Equal(new JobCgroup("7", Cg("cpuacct/slurm_n1/uid_1002/job_7"), CgroupVersion.V1), Of("7", 1002));
        Assert.Null(Of("7", 1001));
        Assert.Null(Of("8", 0));
        Assert.Null(Of("43", 1001));
    }

    /// <summary>
    /// A lookup that finds nothing where a stat on its way fails with an error other than ENOENT or ENOTDIR (EACCES: a
    /// directory of mode 0600 to a thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH) says "not known", not "not
    /// there": the job's cgroup may be below it (<c>SnapshotSplitTests.AJobCgroupThatCannotBeStatedWhenLookedUpIsNotKnownRatherThanNotFound</c>).
    /// A lookup whose way does not go through such a directory still says "not there" (job 42 of another uid).
    /// </summary>
    [Theory]
    [InlineData("v1", "cpuacct/slurm_n1/uid_1001")]
    [InlineData("v1", "cpuacct/slurm_n1")]
    [InlineData("v2", "system.slice/slurmstepd.scope")]
    [InlineData("v2", "system.slice")]
    public void ALookupThatCannotStatItsWaySaysNotKnown(string version, string closed)
    {
        string dir = version == "v1" ? V1Job("cpuacct", "slurm_n1", 1001, "42") : V2Job("slurmstepd.scope", "job_42");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        File.SetUnixFileMode(Cg(closed), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WithoutDacOverride.Run(() =>
        {
            Assert.Equal(Presence.Unknown, NotFound(loc));
            if (closed.EndsWith("uid_1001", StringComparison.Ordinal))
            {
                Assert.Null(loc.Find(Job42 with { Uid = 1002 }, out var other));
                Assert.Equal(Presence.Gone, other);
            }
        });
        File.SetUnixFileMode(Cg(closed), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.Equal((dir, Presence.There), (loc.Find(Job42, out var presence)?.Directory, presence));
    }

    [Fact]
    public void EnumeratesV1Steps()
    {
        V1Job("cpuacct", "slurm_n1", 1001, "42", "batch", "extern", "0", "1");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        JobCgroup job = loc.Find(Job42, out _)!;

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
        var steps = loc.EnumerateSteps(loc.Find(Job42, out _)!)!;
        Assert.Equal(new[] { ("0", CgroupVersion.V2), ("extern", CgroupVersion.V2) }, steps.Select(s => (s.Step, s.Version)));
    }

    [Fact]
    public void StepsOfAVanishedJobAreEmpty()
    {
        string dir = V1Job("cpuacct", "slurm_n1", 1001, "42", "0");
        var loc = new SlurmCgroupLocator(_sys, "n1");
        JobCgroup job = loc.Find(Job42, out _)!;
        Directory.Delete(dir, recursive: true);
        Assert.Equal(Array.Empty<StepCgroup>(), loc.EnumerateSteps(job)); // gone: none (not null, "could not be listed")
        Assert.Equal(Presence.Gone, NotFound(loc));
    }
}
