using Alumet.Hpc.Core;

namespace Alumet.Hpc.Tests.Core;

/// <summary>Logging never throws (Core/Log.cs): a foreground command whose terminal hung up still finishes its work.
/// In the "Log" collection (SlurmHookTests: not in parallel with anything): it configures the process-wide log and
/// swaps <see cref="Console.Error"/>.</summary>
[Collection("Log")]
public sealed class LogTests
{
    private sealed class HungUpTerminal : StringWriter
    {
        public override void WriteLine(string? value) => throw new IOException("Input/output error");
        public override void Write(string? value) => throw new IOException("Input/output error");
    }

    [Fact]
    public void AStderrThatFailsNeitherThrowsNorLosesTheLogFileLine()
    {
        string dir = Directory.CreateTempSubdirectory("alumet-log-").FullName;
        string file = Path.Combine(dir, "alumet-hpc.log");
        var old = Console.Error;
        Console.SetError(new HungUpTerminal());
        try
        {
            Log.Configure(file, "alumet-hpc", syslog: false, stderr: true);
            Log.Error("job 1: finalization failed: test");
            Log.Info("job 1: after it");
        }
        finally
        {
            Console.SetError(old);
            Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        }
        string[] lines = File.ReadAllLines(file);
        Assert.Equal(2, lines.Length);
        Assert.EndsWith("error: job 1: finalization failed: test", lines[0]);
        Assert.EndsWith("info: job 1: after it", lines[1]);
        Directory.Delete(dir, true);
    }
}
