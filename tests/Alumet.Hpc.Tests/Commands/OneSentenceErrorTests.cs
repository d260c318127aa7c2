using System.Diagnostics;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Outputs;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// Error sentences of the published binary that named the wrong line, a path twice, or fewer formats than it takes
/// (session 9's audit, "Noticed, not touched"): exact texts and exit codes.
/// </summary>
public sealed class OneSentenceErrorTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var psi = new ProcessStartInfo(TestInstallation.Binary(), args) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment.Remove("ALUMET_HPC_CONFIG");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), "alumet-hpc did not exit within 30 s");
        return (p.ExitCode, stdout.Result, stderr);
    }

    /// <summary>A TOML error found at the end of the file is on the last written line: a one-line file was "line 2".</summary>
    [Theory]
    [InlineData("x = [1,\n", 1)]
    [InlineData("[sampler]\nrapl_hz = [1,\n\n\n", 2)]
    [InlineData("a = {\n", 1)]
    public void ATomlErrorAtTheEndOfTheFileIsOnItsLastLine(string toml, int line)
    {
        string file = _dir.Sub("bad.toml");
        File.WriteAllText(file, toml);
        var r = Run("report", "--config", file, "-j", "1");
        Assert.Equal(2, r.Code);
        string err = r.Err.Replace(_dir.Path, "DIR");
        Assert.Equal($"alumet-report: error: DIR/bad.toml:{line}", err[..err.IndexOf(": invalid TOML: Unexpected token ", StringComparison.Ordinal)]);
        Assert.EndsWith("; fix the TOML syntax (examples/alumet.toml shows every key)\n", err);
    }

    /// <summary><c>parquet repair</c> of a file that is not Parquet: "failed: F: F: not a Parquet file".</summary>
    [Fact]
    public void RepairOfAFileThatIsNotParquetNamesItOnce()
    {
        string file = _dir.Sub("notes.txt");
        File.WriteAllText(file, "hello\n");
        (int, string, string) Repair()
        {
            var r = Run("parquet", "repair", file);
            return (r.Code, r.Out, r.Err.Replace(_dir.Path, "DIR"));
        }
        Assert.Equal((1, "1 file(s), 1 failed\n", "failed: DIR/notes.txt: not a Parquet file (too short)\n"), Repair());
        File.WriteAllText(file, "hello, a longer text than twelve bytes\n");
        Assert.Equal((1, "1 file(s), 1 failed\n", "failed: DIR/notes.txt: not a Parquet file (no PAR1 at the end)\n"), Repair());
    }

    /// <summary>
    /// -S/-E list every form they take, and take every form they list (sacct's TIME FORMATS): the list left out
    /// [AM|PM], MM.DD[.YY], now+N, elevenses, fika and teatime, and sacct's [-HH:MM[:SS]] after a date was refused.
    /// </summary>
    [Fact]
    public void TheTimeFormatsListedAreTheTimeFormatsTaken()
    {
        string db = _dir.Sub("none.db");
        const string formats = "YYYY-MM-DD[THH:MM[:SS]], MMDD[YY][-HH:MM[:SS]], MM/DD[/YY][-HH:MM[:SS]], MM.DD[.YY][-HH:MM[:SS]], "
            + "HH:MM[:SS][AM|PM], now[{+|-}N[seconds|minutes|hours|days|weeks]], today, midnight, noon, elevenses, fika, teatime, tomorrow";
        var bad = Run("report", "--db", db, "-S", "yesterday");
        Assert.Equal((2, ""), (bad.Code, bad.Out));
        Assert.Equal($"use {formats})\n", bad.Err[bad.Err.IndexOf("use ", StringComparison.Ordinal)..]);
        Assert.StartsWith("alumet-report: error: invalid time 'yesterday' (use ", bad.Err);
        foreach (var time in new[]
        {
            "2026-11-20", "2026-11-20T14:05", "2026-11-20T14:05:09", "1120", "112026", "1120-14:05", "112026-14:05:09",
            "11/20", "11/20/26", "11/20/26-14:05", "11.20", "11.20.26", "11.20.26-14:05:09", "14:05", "14:05:09", "2:05PM", "11:59:59am",
            "now", "now-3", "now+1hours", "now-2days", "now-1weeks", "today", "midnight", "noon", "elevenses", "fika", "teatime", "tomorrow",
        })
        {
            var r = Run("report", "--db", db, "-S", time, "-j", "1");
            Assert.Equal((time, 1, "", "alumet-report: error: no accounting database at DIR/none.db\n"), (time, r.Code, r.Out, r.Err.Replace(_dir.Path, "DIR")));
        }
    }
}
