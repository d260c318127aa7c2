using System.Diagnostics;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// <c>sample</c>, <c>node-sampler</c> (either binary) and <c>ctl</c> run by an ordinary user (nobody, through
/// setpriv) against root's state dir while root's node sampler runs: one sentence each, what and how to fix, exit 77
/// (not 1, a failed run, nor 2, a command line error), nothing on stdout; root's sampler and its job are untouched.
/// They said .NET's "Access to the path … is denied." (twice for sample), nothing at all (node-sampler --detach),
/// or "Permission denied" in the socket's words.
/// </summary>
public sealed class RootOnlyCommandsTests
{
    private static (int Code, string Stdout, string Stderr) Run(string file, string[] args, int uid)
    {
        var psi = uid == 0
            ? new ProcessStartInfo(file, args)
            : new ProcessStartInfo("/usr/bin/setpriv", [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent", file, .. args]);
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), $"{string.Join(' ', args)} still runs after 30 s");
        return (p.ExitCode, stdout.Result, stderr);
    }

    private static int Hook(TestInstallation install, string context, string job)
    {
        using var p = install.StartSlurmHook(context, job);
        Assert.True(p.WaitForExit(60_000));
        return p.ExitCode;
    }

    public static TheoryData<string, string[], string> Commands() => new()
    {
        { "alumet-hpc", ["ctl", "status"], "alumet-hpc: ctl: permission denied on {node}: the node sampler's socket is root's only; run ctl as root (sudo)" },
        { "alumet-hpc", ["ctl", "jobs"], "alumet-hpc: ctl: permission denied on {node}: the node sampler's socket is root's only; run ctl as root (sudo)" },
        { "alumet-hpc", ["ctl", "set", "linger_s=600"], "alumet-hpc: ctl: permission denied on {node}: the node sampler's socket is root's only; run ctl as root (sudo)" },
        { "alumet-hpc", ["node-sampler"], "alumet-hpc: node-sampler: permission denied on {node}: the node sampler must run as root, as the prologs start it (sudo)" },
        { "alumet-hpc", ["node-sampler", "--detach"], "alumet-hpc: node-sampler: permission denied on {node}: the node sampler must run as root, as the prologs start it (sudo)" },
        { "alumet-hpc-sampler", ["node-sampler"], "alumet-hpc-sampler: node-sampler: permission denied on {node}: the node sampler must run as root, as the prologs start it (sudo)" },
        { "alumet-hpc", ["sample", "--scheduler", "slurm", "--job-id", "9", "--user", "nobody", "--uid", "65534"],
          "alumet-hpc: sample: permission denied on {slurm}: a job's sampler must run as root (sudo), or measure a command as yourself with alumet-hpc exec" },
        { "alumet-hpc", ["sample", "--scheduler", "oar", "--job-id", "9", "--user", "nobody", "--uid", "65534", "--detach"],
          "alumet-hpc: sample: permission denied on {state}: a job's sampler must run as root (sudo), or measure a command as yourself with alumet-hpc exec" },
    };

    [SkippableTheory]
    [MemberData(nameof(Commands))]
    public void AnOrdinaryUserIsToldTheCommandIsRoots(string binary, string[] args, string expected)
    {
        Skip.If(Environment.UserName != "root" || !File.Exists("/usr/bin/setpriv"), "needs root and setpriv");
        string bin = Path.Combine(Path.GetDirectoryName(TestInstallation.Binary())!, binary);
        Skip.IfNot(File.Exists(bin), $"{bin}: not published");
        using var install = new TestInstallation(PowercapTree.Standard(1, 262_143_328_850), "attribution = \"exclusive\"\nstop_timeout_s = 3\nlinger_s = 0");
        // As an installed node: the install's directories and config readable by all, the state dir 0755, root's sampler
        // running job 601 (its node directory 0700, the job's scheduler directory 0700).
        foreach (string d in new[] { install.Root, install.Powercap.Root })
            File.SetUnixFileMode(d, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(install.ConfigPath, (UnixFileMode)0b110_100_100);
        string state = install.Config.Paths.StateDir;
        Directory.CreateDirectory(state, (UnixFileMode)0b111_101_101);
        Assert.Equal(0, Hook(install, "prolog_slurmd", "601"));
        int pid = SamplerPid.Read(Alumet.Hpc.Spool.NodeSpool.Root(install.Config))!.Value.Pid;

        var (code, stdout, stderr) = Run(bin, [.. args, "--config", install.ConfigPath], 65534);

        string node = Path.Combine(state, "node"), slurm = Path.Combine(state, "slurm");
        Assert.Equal((RootOnly.ExitCode, "", expected.Replace("{node}", node).Replace("{slurm}", slurm).Replace("{state}", state) + "\n"),
                     (code, stdout, stderr));
        // Root's sampler and its job are untouched; the user's job has no state and no row.
        var jobs = Run(TestInstallation.Binary(), ["ctl", "jobs", "--config", install.ConfigPath], 0);
        Assert.Equal(0, jobs.Code);
        Assert.StartsWith("slurm 601 ", jobs.Stdout);
        Assert.Single(jobs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(pid, SamplerPid.Read(Alumet.Hpc.Spool.NodeSpool.Root(install.Config))!.Value.Pid);
        Assert.False(Directory.Exists(Path.Combine(slurm, "9")));
        Assert.Equal(0, Hook(install, "epilog_slurmd", "601"));
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        Assert.Empty(db.GetJob("9"));
        Assert.Equal(JobStatus.Complete, Assert.Single(db.GetJob("601")).Status);
    }

    /// <summary>
    /// README "The node sampler": every peer's uid is checked with SO_PEERCRED. The node directory opened to all and the
    /// socket made 0666 by hand, an ordinary user's "pause" is answered with a refusal and not applied (a paused
    /// sampler would end the job partial).
    /// </summary>
    [SkippableFact]
    public void APeerOtherThanRootIsRefusedWhenTheSocketIsOpenedByHand()
    {
        Skip.If(Environment.UserName != "root" || !File.Exists("/usr/bin/setpriv") || !File.Exists("/usr/bin/python3"), "needs root, setpriv and python3");
        using var install = new TestInstallation(PowercapTree.Standard(1, 262_143_328_850), "attribution = \"exclusive\"\nstop_timeout_s = 3\nlinger_s = 0");
        foreach (string d in new[] { install.Root, install.Powercap.Root })
            File.SetUnixFileMode(d, (UnixFileMode)0b111_101_101);
        string state = install.Config.Paths.StateDir;
        Directory.CreateDirectory(state, (UnixFileMode)0b111_101_101);
        Assert.Equal(0, Hook(install, "prolog_slurmd", "602"));
        string node = Path.Combine(state, "node"), sock = Path.Combine(node, NodeSocket.FileName);
        File.SetUnixFileMode(node, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(sock, (UnixFileMode)0b110_110_110);

        // The refusal comes before the request is read: the send may meet a closed socket, the answer is still there.
        const string client = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
            + "try: s.sendall(b'pause\\n')\nexcept OSError: pass\nb=b''\nwhile True:\n try: d=s.recv(4096)\n except ConnectionResetError: break\n"
            + " if not d: break\n b+=d\nsys.stdout.write(b.decode())\n";
        var peer = Run("/usr/bin/python3", ["-c", client, sock], 65534);
        Assert.Equal((0, "error permission denied: only uid 0 may use this socket (peer uid 65534)\n", ""), peer);

        Assert.Equal(0, Hook(install, "epilog_slurmd", "602"));
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("602"));
        Assert.Equal((JobStatus.Complete, ""), (row.Status, row.Reason ?? ""));
    }

    /// <summary>
    /// README "The node sampler": root's <c>ctl set KEY=VALUE</c> is applied without restart and validated like the
    /// config file (the same sentence as a bad value in the file); a key that cannot change or a value that is not a
    /// number is one sentence; each refusal exits 1 and changes nothing.
    /// </summary>
    [SkippableFact]
    public void CtlSetIsValidatedLikeTheConfigFileAndAppliedWithoutRestart()
    {
        Skip.If(Environment.UserName != "root", "needs root");
        using var install = new TestInstallation(PowercapTree.Standard(1, 262_143_328_850), "attribution = \"exclusive\"\nstop_timeout_s = 3\nlinger_s = 0");
        Assert.Equal(0, Hook(install, "prolog_slurmd", "603"));
        int pid = SamplerPid.Read(Alumet.Hpc.Spool.NodeSpool.Root(install.Config))!.Value.Pid;
        (int, string, string) Ctl(params string[] words) => Run(TestInstallation.Binary(), ["ctl", .. words, "--config", install.ConfigPath], 0);

        Assert.Equal((1, "", "alumet-hpc: ctl: ctl set: sampler.rapl_hz: 5000 is out of range; use 1..1000 (RAPL updates every ~1 ms)\n"),
                     Ctl("set", "rapl_hz=5000"));
        Assert.Equal((1, "", "alumet-hpc: ctl: ctl set: sampler.storage_period_ms: 50 is out of range; use 0 (store every read) or "
                     + "100..3600000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)\n"), Ctl("set", "storage_period_ms=50"));
        Assert.Equal((1, "", "alumet-hpc: ctl: linger_s: \"soon\" is not a number\n"), Ctl("set", "linger_s=soon"));
        Assert.Equal((1, "", "alumet-hpc: ctl: data_dir cannot be changed while sampling; use one of rapl_hz, storage_period_ms, "
                     + "attribution_period_ms, flush_interval_ms, linger_s, tick_scheduling, max_power_w\n"), Ctl("set", "data_dir=/tmp"));
        var before = Ctl("status");
        Assert.Equal(0, before.Item1);
        Assert.Contains("\nstorage: aggregated per 1000 ms\n", before.Item2); // the refusals changed nothing
        Assert.Equal((0, "storage_period_ms=500 applied\n", ""), Ctl("set", "storage_period_ms=500"));
        var after = Ctl("status");
        Assert.Equal(0, after.Item1);
        Assert.Contains("\nstorage: aggregated per 500 ms\n", after.Item2);
        Assert.Equal(pid, SamplerPid.Read(Alumet.Hpc.Spool.NodeSpool.Root(install.Config))!.Value.Pid);
        Assert.Equal(0, Hook(install, "epilog_slurmd", "603"));
    }
}
