using Xunit;
using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Schedulers.Oar;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

/// <summary>Generated cgroup trees in the layouts OAR 2 (v1) and OAR 3 (v2) really create (see OarCgroupLocator).</summary>
public sealed class OarCgroupLocatorTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("alumet-oar-cg-").FullName;
    private string Root => Path.Combine(_tmp, "cgroup");
    private static readonly JobIdentity Job42 = new("oar", "lab", "42", "alice", 1001, "node1");

    public void Dispose() => Directory.Delete(_tmp, recursive: true);

    private string Cg(string rel) => Path.Combine(Root, rel);

    /// <summary>OAR 2.5's job_resource_manager_cgroups.pl: the job dir in every controller hierarchy.</summary>
    private string V1Job(string user, string id, string oarDir = "oar", params string[] hierarchies)
    {
        if (hierarchies.Length == 0) hierarchies = new[] { "cpuset", "cpu", "cpuacct", "devices", "freezer" };
        string? acct = null;
        foreach (string h in hierarchies)
        {
            string dir = Cg($"{h}/{oarDir}/{user}_{id}");
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "tasks"), "");
            if (h.Split(',').Contains("cpuacct"))
            {
                File.WriteAllText(Path.Combine(dir, "cpuacct.usage"), "157233869\n");
                acct ??= dir;
            }
        }
        return acct ?? "";
    }

    private string V2Job(int uid, string id, string under = "")
    {
        string root = under.Length == 0 ? Root : Cg(under);
        Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "cgroup.controllers"), "cpuset cpu io memory pids\n");
        string dir = Path.Combine(root, "oar.slice", $"oar-u{uid}.slice", $"oar-u{uid}-j{id}.slice");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "cpu.stat"), "usage_usec 0\n");
        return dir;
    }

    [Fact]
    public void V1_separate_controllers_as_on_debian_oar_2_5()
    {
        string dir = V1Job("alice", "42");
        var loc = OarCgroupLocator.Create(Root);
        Assert.Equal(new JobCgroup("42", Cg("cpuacct/oar/alice_42"), CgroupVersion.V1), loc.Find(Job42, out _));
        Assert.Equal(Cg("cpuacct/oar/alice_42"), dir);
    }

    [Theory]
    [InlineData("cpu,cpuacct")]
    [InlineData("cpuacct,cpu")]
    [InlineData("cpuset,cpu,cpuacct,devices,freezer")]
    public void V1_combined_mounts(string hierarchy)
    {
        V1Job("alice", "42", "oar", "cpuset", hierarchy);
        Assert.Equal(new JobCgroup("42", Cg($"{hierarchy}/oar/alice_42"), CgroupVersion.V1), OarCgroupLocator.Create(Root).Find(Job42, out _));
    }

    [Fact]
    public void V1_root_is_oar_own_comounted_hierarchy()
    {
        // OAR mounts cpuset,cpu,cpuacct,... at /dev/oar_cgroups when the OS has no cpuset mount.
        Directory.CreateDirectory(Root);
        File.WriteAllText(Cg("cpuacct.usage"), "99\n");
        string dir = Cg("oar/alice_42");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "cpuacct.usage"), "1\n");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V1), OarCgroupLocator.Create(Root).Find(Job42, out _));
    }

    [Fact]
    public void V1_custom_cpuset_path()
    {
        V1Job("alice", "42", "batch/oar");
        Assert.Equal(Presence.Gone, NotFound(OarCgroupLocator.Create(Root), Job42));
        Assert.Equal(Cg("cpuacct/batch/oar/alice_42"), OarCgroupLocator.Create(Root, "/batch/oar/").Find(Job42, out _)!.Directory);
    }

    [Fact]
    public void V1_other_user_or_job_or_cpuset_only_is_not_found()
    {
        V1Job("bob", "42");          // same id, other user: not this job
        V1Job("alice", "420");       // id prefix
        V1Job("alice", "4");
        V1Job("alice", "42", "oar", "cpuset", "freezer"); // no cpuacct hierarchy holds it: no CPU time to read
        Assert.Equal(Presence.Gone, NotFound(OarCgroupLocator.Create(Root), Job42));
    }

    [Fact]
    public void V1_user_names_with_underscores()
    {
        V1Job("a_b_c", "42");
        var job = Job42 with { User = "a_b_c" };
        Assert.Equal(Cg("cpuacct/oar/a_b_c_42"), OarCgroupLocator.Create(Root).Find(job, out _)!.Directory);
    }

    [Fact]
    public void V2_oar3_slices()
    {
        string dir = V2Job(1001, "42");
        V2Job(1001, "7");
        V2Job(1002, "42000");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), OarCgroupLocator.Create(Root).Find(Job42, out _));
        Assert.Equal(Presence.Gone, NotFound(OarCgroupLocator.Create(Root), Job42 with { Uid = 1002 }));
    }

    [Fact]
    public void V2_unknown_uid_scans_user_slices()
    {
        string dir = V2Job(1005, "42");
        V2Job(1001, "43");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), OarCgroupLocator.Create(Root).Find(Job42 with { Uid = -1 }, out _));
    }

    [Fact]
    public void V2_hybrid_unified_mount()
    {
        string dir = V2Job(1001, "42", "unified");
        Assert.Equal(new JobCgroup("42", dir, CgroupVersion.V2), OarCgroupLocator.Create(Root).Find(Job42, out _));
    }

    [Fact]
    public void V2_slice_without_cpu_stat_is_not_a_job_yet()
    {
        string dir = V2Job(1001, "42");
        File.Delete(Path.Combine(dir, "cpu.stat"));
        Assert.Equal(Presence.Gone, NotFound(OarCgroupLocator.Create(Root), Job42));
    }

    [Fact]
    public void V1_the_plain_cpuacct_hierarchy_first()
    {
        V1Job("alice", "42");
        V1Job("bob", "9");
        // cpu,cpuacct beside cpuacct (Debian-style symlinked names): one cgroup of the job
        V1Job("alice", "42", "oar", "cpu,cpuacct");
        Assert.Equal(new JobCgroup("42", Cg("cpuacct/oar/alice_42"), CgroupVersion.V1), OarCgroupLocator.Create(Root).Find(Job42, out _));
        Assert.Equal(new JobCgroup("9", Cg("cpuacct/oar/bob_9"), CgroupVersion.V1), OarCgroupLocator.Create(Root).Find(Job42 with { JobId = "9", User = "bob" }, out _));
    }

    [Fact]
    public void V2_unknown_uid_takes_only_a_job_slice_of_its_user_slice()
    {
        V2Job(1002, "43");
        Directory.CreateDirectory(Cg("oar.slice/oar-u1002.slice/unrelated.scope"));
        string mismatched = Cg("oar.slice/oar-u1002.slice/oar-u1001-j44.slice"); // uid mismatch with parent
        Directory.CreateDirectory(mismatched);
        File.WriteAllText(Path.Combine(mismatched, "cpu.stat"), "usage_usec 0\n");
        Assert.Equal(Presence.Gone, NotFound(OarCgroupLocator.Create(Root), Job42 with { JobId = "44", Uid = -1 }));
        Assert.Equal(Cg("oar.slice/oar-u1002.slice/oar-u1002-j43.slice"), OarCgroupLocator.Create(Root).Find(Job42 with { JobId = "43", Uid = -1 }, out _)!.Directory);
    }

    [Fact]
    public void Missing_root_finds_nothing()
    {
        var loc = OarCgroupLocator.Create(Path.Combine(_tmp, "absent"));
        Assert.Equal(Presence.Gone, NotFound(loc, Job42));
    }

    /// <summary>
    /// A lookup that finds nothing where a stat or a listing on its way fails with an error other than ENOENT or ENOTDIR
    /// (EACCES: a directory of mode 0600, or 0300 for a listing, to a thread without CAP_DAC_OVERRIDE and
    /// CAP_DAC_READ_SEARCH) says "not known", not "not there": the job's cgroup may be below it. Job 42 is there in each.
    /// </summary>
    [Theory]
    [InlineData("v1", "cpuacct/oar", 0b110_000_000)]
    [InlineData("v1", "cpuacct", 0b110_000_000)]
    [InlineData("v2", "oar.slice/oar-u1001.slice", 0b110_000_000)]
    [InlineData("v2 scan", "oar.slice/oar-u1001.slice", 0b011_000_000)] // listed by no one: the uid unknown
    [InlineData("v2 scan", "oar.slice", 0b011_000_000)]
    public void A_lookup_that_cannot_stat_or_list_its_way_says_not_known(string layout, string closed, int mode)
    {
        string dir = layout == "v1" ? V1Job("alice", "42") : V2Job(1001, "42");
        var job = layout == "v2 scan" ? Job42 with { Uid = -1 } : Job42;
        var loc = OarCgroupLocator.Create(Root);
        var was = File.GetUnixFileMode(Cg(closed));
        File.SetUnixFileMode(Cg(closed), (UnixFileMode)mode);
        Alumet.Hpc.Tests.Fakes.WithoutDacOverride.Run(() => Assert.Equal(Presence.Unknown, NotFound(loc, job)));
        File.SetUnixFileMode(Cg(closed), was);
        Assert.Equal((dir, Presence.There), (loc.Find(job, out var presence)?.Directory, presence));
    }

    /// <summary>What <paramref name="loc"/> says of <paramref name="job"/> where it finds no cgroup of it (its lookup returns null).</summary>
    private static Presence NotFound(OarCgroupLocator loc, JobIdentity job)
    {
        Assert.Null(loc.Find(job, out var presence));
        return presence;
    }

    [Theory]
    [InlineData("alice_42", "42")]
    [InlineData("a_b_7", "7")]
    [InlineData("oar-u1001-j42.slice", "42")]
    [InlineData("oar-u-j42.slice", null)]
    [InlineData("alice_042", null)]
    [InlineData("alice_", null)]
    [InlineData("_42", null)]
    public void Job_id_from_directory_name(string name, string? id) => Assert.Equal(id, OarCgroupLocator.JobIdFromName(name));
}
