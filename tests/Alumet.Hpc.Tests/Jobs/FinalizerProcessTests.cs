using Alumet.Hpc.Jobs;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>The node sampler's <c>finalize-job</c> child, against a stand-in executable that records what it was given.</summary>
public sealed class FinalizerProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("alumet-finalizer-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void TheReasonOfAPartialRowGoesOnStdinNeverOnTheCommandLineThatEveryUserCanRead()
    {
        string args = Path.Combine(_dir, "args"), stdin = Path.Combine(_dir, "stdin"), fake = Path.Combine(_dir, "alumet-hpc");
        Executables.Write(fake, $$"""
            #!/bin/sh
            printf '%s\n' "$@" > '{{args}}'
            cat > '{{stdin}}'
            echo '{"Status":"partial","Reason":"from the child","ParquetPath":"/p","Stored":true,"Delivery":"stored","Error":null}'
            """, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        const string reason = "the sampler died before the end of the job (crash or kill)";

        var outcome = new FinalizerProcess(fake, "/etc/alumet-hpc/alumet.toml").Finalize("/var/lib/alumet-hpc/state/slurm/42", complete: false, reason);

        Assert.Equal(("partial", "from the child", "/p", true), (outcome.Status, outcome.Reason, outcome.ParquetPath, outcome.Stored));
        Assert.Equal(["finalize-job", "--config", "/etc/alumet-hpc/alumet.toml", "--state-dir", "/var/lib/alumet-hpc/state/slurm/42", "--complete", "false"],
            File.ReadAllLines(args));
        Assert.Equal(reason, File.ReadAllText(stdin));
    }
}
