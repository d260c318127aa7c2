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
        var output = new StringWriter();
        int rc = ExecCommand.Run(install.ConfigPath, "5" + expected, null, null, noReport: false, ["sh", "-c", script], output);
        Assert.Equal(expected, rc);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("5" + expected));
        Assert.Equal("exec", row.Scheduler);
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Contains($"job 5{expected}", output.ToString());
    }

    [Fact]
    public void MissingCommandIs127()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1));
        Assert.Equal(127, ExecCommand.Run(install.ConfigPath, "9", null, null, true, ["/nonexistent/command"]));
    }

    [Fact]
    public void NoRaplAndEstimateOffIsAClearError()
    {
        using var install = new TestInstallation(new PowercapTree(), sourcesToml: "rapl = \"on\"\nestimate = \"off\"\nnvml = \"off\"");
        var err = new StringWriter();
        var old = Console.Error;
        Console.SetError(err);
        try { Assert.Equal(2, ExecCommand.Run(install.ConfigPath, "10", null, null, true, ["true"])); }
        finally { Console.SetError(old); }
        Assert.Contains("no RAPL counter", err.ToString());
    }

    [Fact]
    public void UnwritableStateDirIsAClearErrorAndTheCommandDoesNotRun()
    {
        using var install = new TestInstallation(PowercapTree.Standard(1));
        File.WriteAllText(install.PathOf("state"), "a file where the state directory should be");
        string marker = install.PathOf("ran");
        var err = new StringWriter();
        var old = Console.Error;
        Console.SetError(err);
        try
        {
            Assert.Equal(2, ExecCommand.Run(install.ConfigPath, "11", null, null, true, ["touch", marker]));
            Assert.Equal(2, ExecCommand.Run(install.ConfigPath, null, null, null, true, ["touch", marker])); // id from the state dir
        }
        finally { Console.SetError(old); }
        Assert.Contains("set [paths] state_dir", err.ToString());
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
