namespace Alumet.Hpc.Tests.Fakes;

/// <summary>A generated cgroup filesystem: job directories with scripted CPU usage (v1 cpuacct.usage or v2 cpu.stat).</summary>
public sealed class CgroupTree : TempTree
{
    public CgroupTree() : base("cgroup") { }

    /// <summary>Creates or updates a v1 cgroup's <c>cpuacct.usage</c> (ns) at a path relative to the root.</summary>
    public string SetV1Usage(string relativeDir, ulong ns)
    {
        Directory.CreateDirectory(PathOf(relativeDir));
        return WriteInPlace(Path.Combine(relativeDir, "cpuacct.usage"), ns.ToString("D20") + "\n");
    }

    /// <summary>Creates or updates a v2 cgroup's <c>cpu.stat</c> (usage_usec).</summary>
    public string SetV2Usage(string relativeDir, ulong usec)
    {
        Directory.CreateDirectory(PathOf(relativeDir));
        return WriteInPlace(Path.Combine(relativeDir, "cpu.stat"),
            $"usage_usec {usec:D20}\nuser_usec {usec:D20}\nsystem_usec {0:D20}\n");
    }

    private string WriteInPlace(string relative, string content)
    {
        string path = PathOf(relative);
        using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
        fs.Write(System.Text.Encoding.ASCII.GetBytes(content));
        return path;
    }

    public void Remove(string relativeDir) => Directory.Delete(PathOf(relativeDir), recursive: true);
}
