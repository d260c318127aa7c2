using System.Buffers.Text;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Sources.Estimate;

/// <summary>
/// Node CPU time from the aggregate <c>cpu</c> line of /proc/stat, kept open and parsed without allocation.
/// Values are in USER_HZ ticks (100 per second on every Linux ABI that .NET runs on).
/// </summary>
public sealed class ProcStat : IDisposable
{
    public const long UserHz = 100;
    public const long NsPerTick = 1_000_000_000 / UserHz;

    private readonly SafeFileHandle _handle;
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(4096, pinned: true);

    public ProcStat(string procfsRoot)
    {
        _handle = File.OpenHandle(Path.Combine(procfsRoot, "stat"), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (!TryRead(out _, out _))
            throw new InvalidDataException($"{Path.Combine(procfsRoot, "stat")}: no aggregate 'cpu' line");
    }

    /// <summary>
    /// Busy (user+nice+system+irq+softirq) and idle (idle+iowait) ticks summed over all CPUs. <c>steal</c> is neither: on
    /// a VM it is time the hypervisor ran another guest on this vCPU, no work of this node's, so neither the split's
    /// denominator (README, "Attribution") nor the estimate's busy power counts it.
    /// </summary>
    public bool TryRead(out ulong busyTicks, out ulong idleTicks)
    {
        busyTicks = idleTicks = 0;
        int n;
        try { n = RandomAccess.Read(_handle, _buffer, 0); }
        catch (IOException) { return false; }
        ReadOnlySpan<byte> s = _buffer.AsSpan(0, n);
        if (!s.StartsWith("cpu "u8)) return false;
        int eol = s.IndexOf((byte)'\n');
        if (eol > 0) s = s[..eol];
        s = s[4..];
        // user nice system idle iowait irq softirq steal guest guest_nice (guest is already inside user)
        Span<ulong> v = stackalloc ulong[7];
        for (int i = 0; i < v.Length; i++)
        {
            s = s.TrimStart((byte)' ');
            if (s.IsEmpty) break;
            if (!Utf8Parser.TryParse(s, out v[i], out int used)) return false;
            s = s[used..];
        }
        busyTicks = v[0] + v[1] + v[2] + v[5] + v[6];
        idleTicks = v[3] + v[4];
        return true;
    }

    public void Dispose() => _handle.Dispose();
}
