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
        _file = new SysfsCounterFile(CgroupHierarchy.CpuFile(cgroup.Directory, cgroup.Version));
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

    public void Dispose() => _file.Dispose();
}
