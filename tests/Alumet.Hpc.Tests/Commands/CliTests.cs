using System.CommandLine;
using Alumet.Hpc.Commands;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// The binary builds only the command that argv names (<see cref="AlumetCli.CreateRootFor"/>): that command must parse,
/// answer --help and report errors exactly as in the whole tree, and every command must be reachable by its name.
/// </summary>
public class CliTests
{
    [Fact]
    public void EveryCommandIsListedUnderTheNameItAnswersTo()
    {
        Assert.All(AlumetCli.Commands, c => Assert.Equal(c.Name, c.Create().Name));
        Assert.Equal(AlumetCli.Commands.Select(c => c.Name), AlumetCli.CreateRoot().Subcommands.Select(c => c.Name));
        Assert.Equal(AlumetCli.Commands.Length, AlumetCli.Commands.Select(c => c.Name).Distinct().Count());
    }

    public static TheoryData<string[]> Lines() =>
    [
        ["sample", "--help"],
        ["sample", "--scheduler", "exec", "--job-id", "1", "--user", "u", "--uid", "0", "--bogus"],
        ["sample", "--scheduler", "pbs", "--job-id", "1", "--user", "u", "--uid", "0"],
        ["sample"],
        ["exec", "--help"],
        ["node-sampler", "--help"],
        ["ctl", "--help"],
        ["ctl", "stauts"],
        ["slurm", "prolog", "--help"],
        ["oar", "--help"],
        ["db", "flush", "--help"],
        ["parquet", "check", "--help"],
        ["calibrate", "--help"],
        ["finalize-job", "--help"],
    ];

    [Theory]
    [MemberData(nameof(Lines))]
    public void ACommandAloneParsesAndAnswersAsInTheWholeTree(string[] argv)
    {
        (int, string, string, string[]) Run(RootCommand root)
        {
            var parsed = root.Parse(argv);
            var output = new StringWriter();
            var error = new StringWriter();
            // Only help and parse errors are invoked: their actions print and return without running the command.
            int code = parsed.Errors.Count > 0 || argv.Contains("--help")
                ? parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false })
                : -1;
            return (code, output.ToString(), error.ToString(), parsed.Errors.Select(e => e.Message).ToArray());
        }
        var alone = Run(AlumetCli.CreateRootFor(argv));
        var whole = Run(AlumetCli.CreateRoot());
        Assert.Equal((whole.Item1, whole.Item2, whole.Item3), (alone.Item1, alone.Item2, alone.Item3));
        Assert.Equal(whole.Item4, alone.Item4);
        Assert.Single(AlumetCli.CreateRootFor(argv).Subcommands);
    }

    [Fact]
    public void AnUnknownOrMissingCommandGetsTheWholeTree()
    {
        Assert.Equal(AlumetCli.Commands.Length, AlumetCli.CreateRootFor([]).Subcommands.Count);
        Assert.Equal(AlumetCli.Commands.Length, AlumetCli.CreateRootFor(["sampel"]).Subcommands.Count);
        Assert.Equal(AlumetCli.Commands.Length, AlumetCli.CreateRootFor(["--help"]).Subcommands.Count);
    }
}
