using System.Buffers.Text;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Sources;

/// <summary>
/// A sysfs/procfs file holding one decimal integer, kept open and re-read with pread at offset 0:
/// ~570 ns and zero allocation per read, against ~6.9 µs and 7.8 KB for File.ReadAllText (docs/implementation-notes.md).
/// </summary>
public sealed class SysfsCounterFile : IDisposable
{
    private readonly SafeFileHandle _handle;

    public string Path { get; }

    public SysfsCounterFile(string path)
    {
        Path = path;
        _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
    }

    public bool TryRead(out ulong value)
    {
        Span<byte> buf = stackalloc byte[32];
        int n;
        try
        {
            n = RandomAccess.Read(_handle, buf, 0);
        }
        catch (IOException)
        {
            value = 0;
            return false;
        }
        return Utf8Parser.TryParse(buf[..n], out value, out _);
    }

    /// <summary>Reads a small text file once (discovery only, not the hot path).</summary>
    public static string? ReadText(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public void Dispose() => _handle.Dispose();
}
