using System.Buffers.Text;
using Alumet.Hpc.Sources;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// Cumulative CPU time of one cgroup, in ns: v1 <c>cpuacct.usage</c> (ns), v2 <c>cpu.stat</c> <c>usage_usec</c>.
/// Opened once; a removed cgroup makes reads fail, which the caller treats as "job gone".
/// </summary>
public sealed class CgroupCpuReader : IDisposable
{
    private readonly SysfsCounterFile _file;
    private readonly CgroupVersion _version;

    public JobCgroup Cgroup { get; }

    public CgroupCpuReader(JobCgroup cgroup)
    {
        Cgroup = cgroup;
        _version = cgroup.Version;
        string file = Path.Combine(cgroup.Directory, cgroup.Version == CgroupVersion.V1 ? "cpuacct.usage" : "cpu.stat");
        _file = new SysfsCounterFile(file);
    }

    public static CgroupCpuReader? TryOpen(JobCgroup cgroup)
    {
        try { return new CgroupCpuReader(cgroup); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>False when the read fails (a removed cgroup: ENODEV on cgroupfs) or holds no usage.</summary>
    public bool TryReadNs(out ulong ns)
    {
        ns = 0;
        Span<byte> buf = stackalloc byte[1024];
        int n = _file.Read(buf);
        if (n <= 0) return false;
        ReadOnlySpan<byte> s = buf[..n];
        if (_version == CgroupVersion.V1)
            return Utf8Parser.TryParse(s, out ns, out _);

        int at = s.IndexOf("usage_usec "u8);
        if (at < 0 || !Utf8Parser.TryParse(s[(at + "usage_usec ".Length)..], out ulong us, out _)) return false;
        ns = us * 1000;
        return true;
    }

    /// <summary>
    /// Whether <paramref name="dir"/> still names the directory that had <paramref name="inode"/> when its usage file was
    /// opened (where stat(2) cannot say: that it exists): a removed cgroup's open file may still read, its last value, on
    /// some kernels and on plain files, and a requeue may make another cgroup at the same path.
    /// </summary>
    public static bool IsAt(string dir, ulong? inode) =>
        Native.Libc.StatDirectory(dir) is { } d ? inode is null || d.Inode == inode : inode is null && Directory.Exists(dir);

    public void Dispose() => _file.Dispose();
}
