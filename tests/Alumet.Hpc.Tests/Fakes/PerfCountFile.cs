using System.Buffers.Binary;
using Alumet.Hpc.Sources.Rapl;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// What a perf RAPL descriptor gives: one 8-byte count per <c>read</c>. A file the test appends each count to just
/// before the product reads it; <see cref="Fd"/> is a plain descriptor at the file's start, so every <c>read</c>
/// returns the count appended last (an unexpected extra read finds nothing: a failed read, flagged, never a guess).
/// The perf source owns and closes the descriptor.
/// </summary>
public sealed class PerfCountFile : IDisposable
{
    private readonly TempTree _dir = new("perf-count");
    private readonly FileStream _append;
    public int Fd { get; }

    public PerfCountFile()
    {
        string path = _dir.PathOf("count");
        _append = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
        Fd = RaplNative.open(path, RaplNative.O_RDONLY | RaplNative.O_CLOEXEC);
        if (Fd < 0) throw new IOException($"cannot open {path}");
    }

    public void Next(ulong count)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, count);
        _append.Write(b);
        _append.Flush();
    }

    public void Dispose()
    {
        _append.Dispose();
        _dir.Dispose();
    }
}
