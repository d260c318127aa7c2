using Alumet.Hpc.Attribution;

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

    [Fact]
    public void V2RootsAreTheRootAndUnifiedWhereCgroupControllersIs()
    {
        Assert.Empty(CgroupHierarchy.V2Roots(_root));
        string unified = Dir("unified", "cgroup.controllers");
        Assert.Equal(new[] { unified }, CgroupHierarchy.V2Roots(_root));
        Dir("", "cgroup.controllers");
        Assert.Equal(new[] { _root, unified }, CgroupHierarchy.V2Roots(_root));
    }

    [Fact]
    public void V1HierarchiesCarryCpuacctPlainCpuacctFirstThenByName()
    {
        Dir("cpuset");
        Dir("memory");
        string comounted = Dir("cpuset,cpu,cpuacct");
        string combined = Dir("cpu,cpuacct");
        string plain = Dir("cpuacct");
        Assert.Equal(new[] { plain, combined, comounted }, CgroupHierarchy.V1CpuacctHierarchies(_root));
        // OAR's own mount: one co-mounted hierarchy at the root itself comes first.
        Dir("", "cpuacct.usage");
        Assert.Equal(new[] { _root, plain, combined, comounted }, CgroupHierarchy.V1CpuacctHierarchies(_root));
    }

    [Fact]
    public void ACgroupHasCpuTimeByVersion()
    {
        string v1 = Dir("a", "cpuacct.usage"), v2 = Dir("b", "cpu.stat");
        Assert.True(CgroupHierarchy.Is(v1, CgroupVersion.V1));
        Assert.False(CgroupHierarchy.Is(v1, CgroupVersion.V2));
        Assert.True(CgroupHierarchy.Is(v2, CgroupVersion.V2));
        Assert.False(CgroupHierarchy.Is(v2, CgroupVersion.V1));
    }

    [Fact]
    public void SubdirectoriesAreSortedAndAVanishedDirectoryHasNone()
    {
        string b = Dir("p/job_2"), a = Dir("p/job_10");
        Dir("p/other");
        Assert.Equal(new[] { a, b }, CgroupHierarchy.Subdirectories(Path.Combine(_root, "p"), "job_*"));
        Assert.Empty(CgroupHierarchy.Subdirectories(Path.Combine(_root, "gone"), "job_*"));
    }
}
