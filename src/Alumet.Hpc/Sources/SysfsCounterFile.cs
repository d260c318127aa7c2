using System.Buffers.Binary;
using System.Buffers.Text;
using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Sources;

/// <summary>
/// A sysfs/procfs/cgroupfs file kept open and re-read with pread at offset 0 (<see cref="Read"/>; <see cref="TryRead"/>
/// for a file holding one decimal integer; Attribution/CgroupCpuReader.cs parses cgroup CPU time from it):
/// ~570 ns and zero allocation per read, against ~6.9 µs and 7.8 KB for File.ReadAllText (docs/implementation-notes.md).
/// The read is a direct pread on the raw descriptor: RandomAccess.Read adds a SafeHandle add-ref/release, seekability
/// checks and an exception path around each call, which `perf` showed on every 1 kHz tick (bench/README.md).
/// </summary>
public sealed class SysfsCounterFile : IDisposable
{
    private readonly SafeFileHandle _handle; // owns the descriptor (File.OpenHandle: its errors are sentences)
    private int _fd;

    public string Path { get; }

    public SysfsCounterFile(string path)
    {
        Path = path;
        _handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        _fd = (int)_handle.DangerousGetHandle();
    }

    /// <summary>The file's bytes from offset 0 into <paramref name="buf"/>: their count, or -1 (errno, or disposed).</summary>
    public unsafe int Read(Span<byte> buf)
    {
        fixed (byte* p = buf)
            return _fd < 0 ? -1 : (int)Rapl.RaplNative.pread(_fd, p, (nuint)buf.Length, 0);
    }

    /// <summary>False when the read fails (errno), is empty, or is not a decimal number.</summary>
    public bool TryRead(out ulong value)
    {
        Span<byte> buf = stackalloc byte[ReadBytes];
        return TryParseRead(buf, Read(buf), out value);
    }

    /// <summary>A 64-bit decimal has 20 digits: a zero-padded one and its newline fit.</summary>
    private const int ReadBytes = 32;

    /// <summary>The number in the <paramref name="n"/> bytes a read put in <paramref name="buf"/>; false for a failed (n &lt; 0) or empty read.</summary>
    private static bool TryParseRead(ReadOnlySpan<byte> buf, int n, out ulong value)
    {
        if (n <= 0)
        {
            value = 0;
            return false;
        }
        return TryParseDecimal(buf[..n], out value);
    }

    /// <summary>
    /// <see cref="TryRead"/> of a counter that the kernel answers without waiting (powercap's <c>energy_uj</c>: a register
    /// read), by <see cref="Rapl.RaplNative.PreadCounter"/>: the tick's read, without the P/Invoke's GC transition nor
    /// glibc's cancellation wrapper. Never for a file whose read may block (a cgroup's cpu.stat: <see cref="Read"/>).
    /// </summary>
    [SkipLocalsInit] // the buffer is read only where pread or FillPad wrote it
    public unsafe bool TryReadCounter(out ulong value)
    {
        byte* buf = stackalloc byte[CounterBufferBytes];
        FillPad(buf);
        return TryReadCounter(_fd, buf, out value);
    }

    /// <summary>The descriptor (-1 once disposed): <see cref="RaplSource"/> keeps its files' in one array for the tick.</summary>
    internal int Descriptor => _fd;

    /// <summary>A counter read's buffer: <see cref="Pad"/> bytes of '0' (<see cref="FillPad"/>), then the read's <see cref="ReadBytes"/>.</summary>
    internal const int CounterBufferBytes = Pad + ReadBytes;

    /// <summary>ASCII zeros before the read's bytes in a counter buffer: the 3 × 8 bytes <see cref="TryParseCounter"/> loads
    /// always lie in the buffer, the digits right-aligned after zeros, whatever their count (1-24).</summary>
    private const int Pad = 24;

    /// <summary>Writes a counter buffer's <see cref="Pad"/> zeros (once per buffer: the reads write after them).</summary>
    internal static unsafe void FillPad(byte* buf)
    {
        const ulong Zeros = 0x3030303030303030; // "00000000"
        ((ulong*)buf)[0] = Zeros;
        ((ulong*)buf)[1] = Zeros;
        ((ulong*)buf)[2] = Zeros;
    }

    /// <summary><see cref="TryReadCounter(out ulong)"/> of descriptor <paramref name="fd"/> (-1: a failed read) into a counter buffer whose pad is filled.</summary>
    internal static unsafe bool TryReadCounter(int fd, byte* buf, out ulong value)
    {
        int n = fd < 0 ? -1 : (int)Rapl.RaplNative.PreadCounter(fd, buf + Pad, ReadBytes, 0);
        return TryParseCounter(buf, n, out value);
    }

    /// <summary>
    /// The number of a counter read: <paramref name="n"/> bytes (-1: the read failed) after the <see cref="Pad"/> zeros of
    /// <paramref name="buf"/>; the same answer as <see cref="TryParseDecimal"/> (as Utf8Parser's). The tick's case — 1 to 24
    /// digits and energy_uj's newline — is three 8-byte loads ending at the newline (the zeros before the digits do not
    /// change the number), checked and parsed 8 digits at a time, without a loop (simdjson's, as
    /// <see cref="TryParseDecimal"/>): the 24 digits are high · 10^16 + mid · 10^8 + low, which fits 64 bits when
    /// high &lt; 1844. Anything else (no newline at the end, another byte, more digits, a larger number) takes
    /// <see cref="TryParseDecimal"/>.
    /// </summary>
    internal static unsafe bool TryParseCounter(byte* buf, int n, out ulong value)
    {
        if ((uint)(n - 2) < Pad && buf[Pad + n - 1] == '\n')
        {
            byte* end = buf + Pad + n - 1;
            ulong high = Load8(end - 24), mid = Load8(end - 16), low = Load8(end - 8);
            if (EightDigits(high) & EightDigits(mid) & EightDigits(low))
            {
                ulong h = ParseEightDigits(high);
                if (h < 1844)
                {
                    value = h * 10_000_000_000_000_000 + ParseEightDigits(mid) * 100_000_000 + ParseEightDigits(low);
                    return true;
                }
            }
        }
        return TryParseRead(new ReadOnlySpan<byte>(buf + Pad, ReadBytes), n, out value);
    }

    /// <summary>8 bytes as a little-endian number (the first byte lowest), as the SWAR checks want.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe ulong Load8(byte* p) =>
        BitConverter.IsLittleEndian ? Unsafe.ReadUnaligned<ulong>(p) : BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ulong>(p));

    /// <summary><see cref="TryParseCounter"/> of <paramref name="text"/> as a read of it would give (its first <see cref="ReadBytes"/> bytes), for tests.</summary>
    internal static unsafe bool TryParseCounterText(ReadOnlySpan<byte> text, out ulong value)
    {
        byte* buf = stackalloc byte[CounterBufferBytes];
        new Span<byte>(buf, CounterBufferBytes).Fill(0xA5); // what pread does not write is garbage
        FillPad(buf);
        int n = Math.Min(text.Length, ReadBytes);
        text[..n].CopyTo(new Span<byte>(buf + Pad, ReadBytes));
        return TryParseCounter(buf, n, out value);
    }

    /// <summary>
    /// What <see cref="Utf8Parser"/> reads from <paramref name="text"/> (its leading decimal number; what follows, such as
    /// energy_uj's newline, is ignored), with the common case in a plain loop: leading zeros (a file rewritten in place
    /// keeps its width by zero-padding, as bench/lib.sh's generated tree does), then up to 19 digits, which cannot
    /// overflow (10^19 − 1 &lt; 2^64), then a non-digit or the end. Anything else (a sign, 20 significant digits or more,
    /// no digit) goes to Utf8Parser itself, so the answer is always the same as before. Six times per tick at 1 kHz: the
    /// zeros and the first 16 digits go 8 bytes at a time (SWAR, as simdjson's parse_eight_digits_unrolled): 179
    /// instructions instead of 262 for bench/lib.sh's 20-character counters (callgrind).
    /// </summary>
    internal static bool TryParseDecimal(ReadOnlySpan<byte> text, out ulong value)
    {
        const ulong Zeros = 0x3030303030303030; // "00000000"
        int n = text.Length;
        int i = 0;
        while (i + 8 <= n && BinaryPrimitives.ReadUInt64LittleEndian(text[i..]) == Zeros) i += 8;
        while (i < n && text[i] == '0') i++;
        int start = i;
        ulong v = 0;
        // 8 digits at a time while 8 more keep the count within 19 (at most twice), then one at a time up to 19.
        while (i + 8 <= n && i - start <= 19 - 8)
        {
            ulong chunk = BinaryPrimitives.ReadUInt64LittleEndian(text[i..]);
            if (!EightDigits(chunk)) break;
            v = v * 100_000_000 + ParseEightDigits(chunk);
            i += 8;
        }
        for (; i < n && i - start < 19; i++)
        {
            uint digit = (uint)(text[i] - '0');
            if (digit > 9) break;
            v = v * 10 + digit;
        }
        if (i > 0 && (i == n || (uint)(text[i] - '0') > 9))
        {
            value = v;
            return true;
        }
        return Utf8Parser.TryParse(text, out value, out _);
    }

    /// <summary>Whether all 8 bytes of <paramref name="chunk"/> are ASCII digits (simdjson's is_made_of_eight_digits_fast).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool EightDigits(ulong chunk) =>
        ((chunk & 0xF0F0F0F0F0F0F0F0) | (((chunk + 0x0606060606060606) & 0xF0F0F0F0F0F0F0F0) >> 4)) == 0x3333333333333333;

    /// <summary>The value of 8 ASCII digits, the first in the lowest byte (simdjson's parse_eight_digits_unrolled).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ParseEightDigits(ulong chunk)
    {
        chunk = (chunk & 0x0F0F0F0F0F0F0F0F) * 2561 >> 8;
        chunk = (chunk & 0x00FF00FF00FF00FF) * 6553601 >> 16;
        return (chunk & 0x0000FFFF0000FFFF) * 42949672960001 >> 32;
    }

    public void Dispose()
    {
        _fd = -1; // a read after this fails rather than reading whatever file reuses the number
        _handle.Dispose();
    }
}
