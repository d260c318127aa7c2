using Alumet.Hpc.Commands;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

public class ExecCommandTests
{
    [Theory]
    [InlineData("exit 0", 0)]
    [InlineData("exit 7", 7)]
    [InlineData("kill -TERM $$", 143)] // killed by a signal: 128 + signal number, like a shell
    public void ReturnsTheCommandsExitCodeAndRecordsTheJob(string script, int expected)
    {
        using var install = new TestInstallation(PowercapTree.Standard(1));
        string id = ExecIds.Next();
        var (rc, _, stderr) = ExecBinary.Exec(install, id, ["sh", "-c", script], report: true);
        Assert.True(rc == expected, $"exit {rc}: {stderr}");
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(id));
        Assert.Equal("exec", row.Scheduler);
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Contains($"job {id}", stderr); // the report
    }

    [Theory]
    [InlineData("/nonexistent/command", 127, "alumet-hpc: exec: '/nonexistent/command': no such file; check the path (nothing was measured)")]
    [InlineData("no-such-command-alumet", 127, "alumet-hpc: exec: 'no-such-command-alumet': command not found in PATH; check the name, or give the program's path (nothing was measured)")]
    [InlineData("{install}/script.sh", 126, "alumet-hpc: exec: '{install}/script.sh' is not executable (permission denied); chmod +x it or run it through its interpreter (nothing was measured)")]
    [InlineData("/usr", 126, "alumet-hpc: exec: '/usr' is a directory, not a program (nothing was measured)")]
    public void ACommandThatCannotRunIsOneLineAShellExitCodeAndNoRow(string command, int expected, string message)
    {
        using var install = new TestInstallation(PowercapTree.Standard(1));
        File.SetUnixFileMode(install.Write("script.sh", "#!/bin/sh\n"), UnixFileMode.UserRead | UnixFileMode.UserWrite); // 0600
        command = command.Replace("{install}", install.Root);
        message = message.Replace("{install}", install.Root);
        var (rc, _, stderr) = ExecBinary.Exec(install, ExecIds.Next(), [command], report: true);
        Assert.Equal(expected, rc);
        Assert.Equal(message + "\n", stderr);
        Assert.False(File.Exists(install.Config.Paths.Database), "no accounting row (not even a database)");
        Assert.False(Directory.Exists(install.Config.Paths.DataDir), "no Parquet");
        Assert.False(Directory.Exists(install.Config.Paths.StateDir), "no job state, no exec id taken");
    }

    [Fact]
    public void ANameIsLookedUpInPathOnlyNotInTheCurrentDirectory()
    {
        using var tree = new TempTree("cwd");
        string planted = Executables.Write(tree.PathOf("ls"), "#!/bin/sh\nexit 99\n", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Assert.Equal(127, CommandPath.Resolve("ls", "/nonexistent-dir").ExitCode);
        Assert.Equal("/usr/bin/ls", CommandPath.Resolve("ls", "/nonexistent-dir:/usr/bin").Path);
        Assert.Equal(planted, CommandPath.Resolve("ls", tree.Root).Path); // only because PATH names it
    }

    [Fact]
    public void NoRaplAndEstimateOffIsAClearError()
    {
        using var install = new TestInstallation(new PowercapTree(), sourcesToml: "rapl = \"on\"\nestimate = \"off\"\nnvml = \"off\"");
        var (rc, _, stderr) = ExecBinary.Exec(install, ExecIds.Next(), ["true"]);
        Assert.Equal(2, rc);
        Assert.Contains("no RAPL counter", stderr);
    }

    [Fact]
    public void UnwritableStateDirIsAClearErrorAndTheCommandDoesNotRun()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1));
        File.WriteAllText(install.PathOf("state"), "a file where the state directory should be");
        string marker = install.PathOf("ran");
        var given = ExecBinary.Exec(install, ExecIds.Next(), ["touch", marker]);
        var counted = ExecBinary.Exec(install, null, ["touch", marker]); // id from the state dir
        Assert.Equal((2, 2), (given.ExitCode, counted.ExitCode));
        Assert.Contains("set [paths] state_dir", given.Stderr);
        Assert.Contains("set [paths] state_dir", counted.Stderr);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void ExecIdsAreSequentialPerNode()
    {
        using var tree = new TempTree("ids");
        Assert.Equal("1", Alumet.Hpc.Jobs.ExecJobIds.Next(tree.Root));
        Assert.Equal("2", Alumet.Hpc.Jobs.ExecJobIds.Next(tree.Root));
    }
}
