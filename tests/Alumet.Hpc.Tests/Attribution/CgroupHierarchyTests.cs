using Alumet.Hpc.Attribution;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Attribution;

/// <summary>The cgroup filesystem as both schedulers' locators read it (generated trees).</summary>
public sealed class CgroupHierarchyTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("alumet-cg-hierarchy-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Dir(string rel, string? file = null)
    {
        string d = Path.Combine(_root, rel);
        Directory.CreateDirectory(d);
        if (file is not null) File.WriteAllText(Path.Combine(d, file), "0\n");
        return d;
    }

    private static List<string> V2Roots(string root)
    {
        bool unknown = false;
        var roots = CgroupHierarchy.V2Roots(root, ref unknown);
        Assert.False(unknown);
        return roots;
    }

    private static List<string> V1CpuacctHierarchies(string root)
    {
        bool unknown = false;
        var found = CgroupHierarchy.V1CpuacctHierarchies(root, ref unknown);
        Assert.False(unknown);
        return found;
    }

    [Fact]
    public void V2RootsAreTheRootAndUnifiedWhereCgroupControllersIs()
    {
        Assert.Empty(V2Roots(_root));
        string unified = Dir("unified", "cgroup.controllers");
        Assert.Equal(new[] { unified }, V2Roots(_root));
        Dir("", "cgroup.controllers");
        Assert.Equal(new[] { _root, unified }, V2Roots(_root));
    }

    [Fact]
    public void V1HierarchiesCarryCpuacctPlainCpuacctFirstThenByName()
    {
        Dir("cpuset");
        Dir("memory");
        string comounted = Dir("cpuset,cpu,cpuacct");
        string combined = Dir("cpu,cpuacct");
        string plain = Dir("cpuacct");
        Assert.Equal(new[] { plain, combined, comounted }, V1CpuacctHierarchies(_root));
        // OAR's own mount: one co-mounted hierarchy at the root itself comes first.
        Dir("", "cpuacct.usage");
        Assert.Equal(new[] { _root, plain, combined, comounted }, V1CpuacctHierarchies(_root));
    }

    [Fact]
    public void ACgroupHasCpuTimeByVersion()
    {
        string v1 = Dir("a", "cpuacct.usage"), v2 = Dir("b", "cpu.stat");
        Assert.Equal(Presence.There, CgroupHierarchy.Is(v1, CgroupVersion.V1));
        Assert.Equal(Presence.Gone, CgroupHierarchy.Is(v1, CgroupVersion.V2));
        Assert.Equal(Presence.There, CgroupHierarchy.Is(v2, CgroupVersion.V2));
        Assert.Equal(Presence.Gone, CgroupHierarchy.Is(v2, CgroupVersion.V1));
    }

    /// <summary>
    /// "Gone" is ENOENT, ENOTDIR (a path through a regular file) or another inode at the path; any other failed stat is
    /// "not known": a path through a symlink loop (ELOOP), and one below a directory of mode 0600 to root without
    /// CAP_DAC_READ_SEARCH (EACCES), which the node sampler took for gone until 2026-12-03 (SnapshotSplitTests).
    /// </summary>
    [Fact]
    public void PresenceTellsAGoneCgroupFromOneThatCouldNotBeStated()
    {
        string job = Dir("p/job_1", "cpuacct.usage");
        ulong inode = Alumet.Hpc.Native.Libc.StatPath(job)!.Value.Ino;
        Assert.Equal(Presence.There, CgroupHierarchy.PresenceOf(job));
        Assert.Equal(Presence.There, CgroupHierarchy.PresenceOf(job, inode));
        Assert.Equal(Presence.Gone, CgroupHierarchy.PresenceOf(job, inode + 1));                       // another one at its path
        Assert.Equal(Presence.Gone, CgroupHierarchy.PresenceOf(Path.Combine(_root, "p/job_2")));      // ENOENT
        Assert.Equal(Presence.Gone, CgroupHierarchy.PresenceOf(Path.Combine(job, "cpuacct.usage", "x"))); // ENOTDIR
        File.CreateSymbolicLink(Path.Combine(_root, "loop"), Path.Combine(_root, "loop"));
        Assert.Equal(Presence.Unknown, CgroupHierarchy.PresenceOf(Path.Combine(_root, "loop", "job_1"))); // ELOOP
        string closed = Path.Combine(_root, "p");
        File.SetUnixFileMode(closed, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        WithoutDacOverride.Run(() =>
        {
            Assert.Equal(Presence.Unknown, CgroupHierarchy.PresenceOf(job));                           // EACCES
            Assert.Equal(Presence.Unknown, CgroupHierarchy.Is(job, CgroupVersion.V1));
            Assert.Equal(Presence.Unknown, CgroupHierarchy.PresenceOf(Path.Combine(closed, "job_2"))); // not known either
            bool unknown = false;
            Assert.False(CgroupHierarchy.Is(job, CgroupVersion.V1, ref unknown));                      // not found now,
            Assert.True(unknown);                                                                      // and not known absent
        });
        Assert.Equal(Presence.There, CgroupHierarchy.PresenceOf(job, inode));                          // with it
    }

    /// <summary>
    /// An exec cgroup that rmdir(2) did not remove is said (exec's last line, the node sampler's log), unless it is gone
    /// (ENOENT or ENOTDIR: <see cref="CgroupHierarchy.PresenceOf"/>); one that cannot be stat'ed either (EACCES: its parent
    /// of mode 0600 to a thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH) is not taken for removed. Until 2026-12-03
    /// any failed stat (Directory.Exists) was "removed", and nothing was said.
    /// </summary>
    [Fact]
    public void AnExecCgroupNotRemovedIsSaidUnlessItIsGone()
    {
        string dir = Dir("cpuacct/alumet/exec_9"), parent = Path.Combine(_root, "cpuacct/alumet");
        Assert.Null(ExecCgroup.Remove(Path.Combine(parent, "exec_8")));      // ENOENT: gone
        var was = File.GetUnixFileMode(parent);
        File.SetUnixFileMode(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string? said = null;
        WithoutDacOverride.Run(() => said = ExecCgroup.Remove(dir));
        File.SetUnixFileMode(parent, was);
        Assert.Equal($"cgroup {dir} not removed: Permission denied", said);
        Assert.True(Directory.Exists(dir));
        Assert.Null(ExecCgroup.Remove(dir));                                 // removed
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void SubdirectoriesAreSortedAndAVanishedDirectoryHasNone()
    {
        string b = Dir("p/job_2"), a = Dir("p/job_10");
        Dir("p/other");
        Assert.Equal(new[] { a, b }, CgroupHierarchy.Subdirectories(Path.Combine(_root, "p"), "job_*"));
        Assert.Equal(Array.Empty<string>(), CgroupHierarchy.Subdirectories(Path.Combine(_root, "gone"), "job_*"));
    }

    /// <summary>
    /// "Gone" (ENOENT, or ENOTDIR: a path through a regular file; none) is not "could not be listed" (null): a path through
    /// a symlink loop (ELOOP) and a directory of mode 0300 to root without CAP_DAC_READ_SEARCH (EACCES) answered none until 2026-12-03,
    /// which the step listing took for "every step gone" and a parent's check for "nothing below" (SnapshotSplitTests).
    /// </summary>
    [Fact]
    public void SubdirectoriesTellsAGoneDirectoryFromOneThatCouldNotBeListed()
    {
        Dir("p/job_1");
        File.CreateSymbolicLink(Path.Combine(_root, "loop"), Path.Combine(_root, "loop"));
        Assert.Null(CgroupHierarchy.Subdirectories(Path.Combine(_root, "loop", "p")));
        string file = Path.Combine(Dir("f"), "file");
        File.WriteAllText(file, "");
        Assert.Equal(Array.Empty<string>(), CgroupHierarchy.Subdirectories(Path.Combine(file, "p"))); // ENOTDIR: no such directory
        string closed = Path.Combine(_root, "p");
        File.SetUnixFileMode(closed, UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        WithoutDacOverride.Run(() => Assert.Null(CgroupHierarchy.Subdirectories(closed)));
        Assert.Equal(new[] { Path.Combine(closed, "job_1") }, CgroupHierarchy.Subdirectories(closed)); // with it: listed
        Assert.Equal(Array.Empty<string>(), CgroupHierarchy.Subdirectories(Path.Combine(closed, "job_1", "gone")));
    }

    [Fact]
    public void ThisProcesssCgroupsAreOneEntryPerHierarchyV1AndV2()
    {
        string self = Path.Combine(_root, "self-cgroup");
        File.WriteAllText(self, "12:cpu,cpuacct:/slurm/uid_0/job_7\n3:name=systemd:/user.slice\n0::/user.slice/session-1.scope\nbroken line\n");
        Assert.Equal(new[] { ("cpu,cpuacct", "/slurm/uid_0/job_7"), ("name=systemd", "/user.slice"), ("", "/user.slice/session-1.scope") },
            CgroupHierarchy.OfThisProcess(self));
        Assert.Empty(CgroupHierarchy.OfThisProcess(Path.Combine(_root, "missing")));
    }

    [Fact]
    public void LeavingCgroupsWritesThePidToTheRootOfEachHierarchyAndExecFindsItsOriginalCgroup()
    {
        string cpuacct = Dir("cpu,cpuacct");
        Dir("cpu,cpuacct/slurm/job_7");
        File.WriteAllText(Path.Combine(cpuacct, "cgroup.procs"), "");
        File.WriteAllText(Path.Combine(cpuacct, "cpuacct.usage"), "0\n");
        string systemd = Dir("systemd");
        File.WriteAllText(Path.Combine(systemd, "cgroup.procs"), "");
        string self = Path.Combine(_root, "self-cgroup");
        File.WriteAllText(self, "12:cpu,cpuacct:/slurm/job_7\n3:name=systemd:/user.slice\n2:memory:/\n");

        Alumet.Hpc.Jobs.SamplerProcessSetup.LeaveCgroups(_root, self);

        string pid = Environment.ProcessId.ToString();
        Assert.Equal(pid, File.ReadAllText(Path.Combine(cpuacct, "cgroup.procs")));
        Assert.Equal(pid, File.ReadAllText(Path.Combine(systemd, "cgroup.procs")));
        var exec = new ExecCgroup(Path.Combine(cpuacct, ExecCgroup.Parent, ExecCgroup.Name("9")), CgroupVersion.V1);
        Assert.Equal(Path.Combine(cpuacct, "slurm/job_7"), exec.Current(self));
    }
}
