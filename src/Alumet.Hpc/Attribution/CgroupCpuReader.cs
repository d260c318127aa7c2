using System.Buffers.Text;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// Cumulative CPU time of one cgroup, in ns: v1 <c>cpuacct.usage</c> (ns), v2 <c>cpu.stat</c> <c>usage_usec</c>.
/// Opened once; a removed cgroup makes reads fail, which the caller treats as "job gone".
/// </summary>
public sealed class CgroupCpuReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly CgroupVersion _version;
    private int _fd;

    public JobCgroup Cgroup { get; }

    public CgroupCpuReader(JobCgroup cgroup)
    {
        Cgroup = cgroup;
        _version = cgroup.Version;
        string file = Path.Combine(cgroup.Directory, cgroup.Version == CgroupVersion.V1 ? "cpuacct.usage" : "cpu.stat");
        _handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        _fd = (int)_handle.DangerousGetHandle();
    }

    public static CgroupCpuReader? TryOpen(JobCgroup cgroup)
    {
        try { return new CgroupCpuReader(cgroup); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>False when the read fails (a removed cgroup: ENODEV on cgroupfs) or holds no usage.</summary>
    public unsafe bool TryReadNs(out ulong ns)
    {
        ns = 0;
        // A direct pread on the descriptor the handle owns: no SafeHandle add-ref or exception per job and period.
        byte* buf = stackalloc byte[1024];
        nint n = _fd < 0 ? -1 : Sources.Rapl.RaplNative.pread(_fd, buf, 1024, 0);
        if (n <= 0) return false;
        ReadOnlySpan<byte> s = new(buf, (int)n);
        if (_version == CgroupVersion.V1)
            return Utf8Parser.TryParse(s, out ns, out _);

        int at = s.IndexOf("usage_usec "u8);
        if (at < 0 || !Utf8Parser.TryParse(s[(at + "usage_usec ".Length)..], out ulong us, out _)) return false;
        ns = us * 1000;
        return true;
    }

    public void Dispose()
    {
        _fd = -1; // a read after this fails rather than reading whatever file reuses the number
        _handle.Dispose();
    }
}
