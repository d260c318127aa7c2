using System.Buffers.Text;
using System.Text;
using Alumet.Hpc.Sources;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources;

/// <summary>
/// <see cref="SysfsCounterFile.TryRead"/>, the read of every counter on every tick: its digit loop must answer exactly as
/// Utf8Parser did before it (energy_uj's number and newline, and every odd content a broken file could hold).
/// </summary>
public sealed class SysfsCounterFileTests : IDisposable
{
    private readonly TempTree _tree = new();

    public void Dispose() => _tree.Dispose();

    [Theory]
    [InlineData("262143328850\n", true, 262_143_328_850UL)]
    [InlineData("0\n", true, 0UL)]
    [InlineData("007\n", true, 7UL)]
    [InlineData("9999999999999999999\n", true, 9_999_999_999_999_999_999UL)] // 19 digits: the loop's longest
    [InlineData("18446744073709551615\n", true, ulong.MaxValue)]            // 20 digits: Utf8Parser's
    [InlineData("18446744073709551616\n", false, 0UL)]                      // one more: overflow
    [InlineData("00000000000000000000042\n", true, 42UL)]
    [InlineData("00000000262143328850\n", true, 262_143_328_850UL)]          // zero-padded to 20 (bench/lib.sh's tree)
    [InlineData("00000000000000000000\n", true, 0UL)]
    [InlineData("000018446744073709551615\n", true, ulong.MaxValue)]
    [InlineData("000018446744073709551616\n", false, 0UL)]
    [InlineData("0009999999999999999999\n", true, 9_999_999_999_999_999_999UL)]
    [InlineData("123", true, 123UL)]                                        // no newline
    [InlineData("123.5\n", true, 123UL)]
    [InlineData("12 34\n", true, 12UL)]
    [InlineData("\n", false, 0UL)]
    [InlineData("abc\n", false, 0UL)]
    [InlineData("-5\n", false, 0UL)]
    [InlineData(" 5\n", false, 0UL)]
    public void ReadsTheLeadingNumberExactlyAsUtf8ParserDoes(string content, bool ok, ulong expected)
    {
        string path = _tree.Write("energy_uj", content);
        using var file = new SysfsCounterFile(path);

        Assert.Equal(ok, file.TryRead(out ulong value));
        Assert.Equal(expected, value);
        // The same answer as the parser it replaced on the hot path, for this content.
        Assert.Equal(Utf8Parser.TryParse(Encoding.ASCII.GetBytes(content), out ulong reference, out _), ok);
        Assert.Equal(reference, value);
        Assert.Equal(ok, file.TryRead(out ulong again)); // re-read at offset 0 (pread), not where the last read ended
        Assert.Equal(value, again);
        // The tick's read (RaplSource): the same answer through its own pread.
        Assert.Equal(ok, file.TryReadCounter(out ulong counter));
        Assert.Equal(value, counter);
        Assert.Equal(ok, file.TryReadCounter(out counter));
        Assert.Equal(value, counter);
    }

    /// <summary>
    /// The 8-bytes-at-a-time parse against Utf8Parser on generated contents: every split of zeros and digits around the
    /// 8-byte steps (0-24 leading zeros, 0-22 digits), each followed by the end or by a byte next to the digits in ASCII
    /// ('/', ':') or a newline, a space, a dot, a high byte.
    /// </summary>
    [Fact]
    public void TheEightByteParseAnswersAsUtf8ParserOnEveryLengthAndTerminator()
    {
        byte[][] ends = [[], "\n"u8.ToArray(), "/"u8.ToArray(), ":"u8.ToArray(), " 7"u8.ToArray(), ".5"u8.ToArray(), [0xFA, 0x31], "0"u8.ToArray()];
        int checkedCount = 0;
        foreach (var bytes in Contents(new Random(8), ends))
        {
            bool ok = SysfsCounterFile.TryParseDecimal(bytes, out ulong value);
            bool refOk = Utf8Parser.TryParse(bytes, out ulong reference, out _);
            Assert.True(ok == refOk && value == reference, $"'{Encoding.Latin1.GetString(bytes)}': {ok} {value}, Utf8Parser {refOk} {reference}");
            checkedCount++;
        }
        Assert.Equal(25 * 23 * 8 * 4, checkedCount);
    }

    /// <summary>
    /// The tick's counter parse (<see cref="SysfsCounterFile.TryReadCounter(out ulong)"/>, RaplSource: three 8-byte loads
    /// ending at the newline) against Utf8Parser on the same generated contents, as a read of at most 32 bytes gives them
    /// (what the read leaves of the buffer is garbage), with newline-ended terminators.
    /// </summary>
    [Fact]
    public void TheCounterParseAnswersAsUtf8ParserOnEveryReadOfAnyLength()
    {
        byte[][] ends = [[], "\n"u8.ToArray(), "\n\n"u8.ToArray(), "/"u8.ToArray(), ":\n"u8.ToArray(), " 7\n"u8.ToArray(), [0xFA, 0x0A], "0"u8.ToArray()];
        int checkedCount = 0;
        foreach (var content in Contents(new Random(9), ends))
        {
            var read = content.Take(32).ToArray(); // what one read of the file gives
            bool ok = SysfsCounterFile.TryParseCounterText(read, out ulong value);
            bool refOk = Utf8Parser.TryParse(read, out ulong reference, out _);
            Assert.True(ok == refOk && value == reference, $"'{Encoding.Latin1.GetString(read)}': {ok} {value}, Utf8Parser {refOk} {reference}");
            checkedCount++;
        }
        Assert.Equal(25 * 23 * 8 * 4, checkedCount);
    }

    /// <summary>0-24 zeros, then 0-22 digits (4 draws: all 9s; random, or 2^64 - 1 and one more at 20 digits; random, or
    /// starting 1844 — the three-load parse's edge; random), then each of <paramref name="ends"/>.</summary>
    private static IEnumerable<byte[]> Contents(Random rng, byte[][] ends)
    {
        for (int zeros = 0; zeros <= 24; zeros++)
            for (int digits = 0; digits <= 22; digits++)
                foreach (var end in ends)
                    for (int draw = 0; draw < 4; draw++)
                    {
                        var text = new List<byte>();
                        for (int k = 0; k < zeros; k++) text.Add((byte)'0');
                        for (int k = 0; k < digits; k++)
                        {
                            // The first significant digit is not a zero; draw 0 keeps the largest digits (overflow edges).
                            int d = draw == 0 ? 9 : k == 0 ? rng.Next(1, 10) : rng.Next(0, 10);
                            if (draw == 1 && digits == 20) d = "18446744073709551615"[k] - '0' + (k == 19 ? rng.Next(0, 2) : 0);
                            if (draw == 2 && digits >= 4 && k < 4) d = "1844"[k] - '0';
                            text.Add((byte)('0' + d));
                        }
                        text.AddRange(end);
                        yield return text.ToArray();
                    }
    }

    [Fact]
    public void AnEmptyFileIsAFailedRead()
    {
        using var file = new SysfsCounterFile(_tree.Write("energy_uj", ""));

        Assert.False(file.TryRead(out ulong value));
        Assert.Equal(0UL, value);
    }
}
