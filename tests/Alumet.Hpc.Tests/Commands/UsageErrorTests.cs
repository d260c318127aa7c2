using System.Diagnostics;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// A command line that does not parse is one sentence on stderr — what is wrong and where the options are listed — and
/// exit 2, as alumet-report answers: never the whole help page, nor exit 1 (the code of a run that failed), through the
/// published binary.
/// </summary>
public sealed class UsageErrorTests
{
    [Theory]
    [InlineData("--bogus", "Unrecognized command or argument '--bogus'; `alumet-hpc --help` lists the options")]
    [InlineData("sample --scheduler exec --job-id 1 --user root --uid 0 --nope",
        "Unrecognized command or argument '--nope'; `alumet-hpc sample --help` lists the options")]
    [InlineData("sample --job-id 1 --user root --uid 0", "Option '--scheduler' is required; `alumet-hpc sample --help` lists the options")]
    [InlineData("parquet export", "Required argument 'spool' missing for command: 'export'; `alumet-hpc parquet export --help` lists the options")]
    public void ABadCommandLineIsOneSentenceAndExit2(string line, string error)
    {
        var psi = new ProcessStartInfo(TestInstallation.Binary(), line.Split(' '))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
        };
        psi.Environment.Remove("ALUMET_HPC_CONFIG");
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), "alumet-hpc did not exit within 30 s");
        Assert.Equal((2, "", $"alumet-hpc: error: {error}\n"), (p.ExitCode, stdout.Result, stderr));
    }
}
