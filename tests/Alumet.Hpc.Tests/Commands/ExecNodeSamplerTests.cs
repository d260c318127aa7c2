using System.Diagnostics;
using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// <c>alumet-hpc exec</c> as root goes through the node's one sampler, as a job with its own cgroup, so that the node is
/// split between it and the scheduler's jobs by CPU time and counted once. Through the native binary, on generated
/// counters, cgroups and /proc/stat.
/// </summary>
public class ExecNodeSamplerTests
{
    private const ulong MaxRange = 262_143_328_850;
    private const string Hierarchy = "cpuacct"; // this machine's layout: a v1 cpuacct mount of its own

    private sealed class Lab : IDisposable
    {
        public CgroupTree Cgroups { get; } = new();
        public ProcTree Proc { get; } = new();
        public TestInstallation Install { get; }

        public Lab()
        {
            Cgroups.SetV1Usage(Hierarchy, 0);
            Install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
                "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nlinger_s = 0",
                pathsToml: $"cgroup_root = \"{Cgroups.Root}\"\nprocfs_root = \"{Proc.Root}\"");
        }

        public string State(string scheduler, string job) => Path.Combine(Install.Config.Paths.StateDir, scheduler, job);

        public string Ctl(string verb)
        {
            var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["ctl", verb, "--config", Install.ConfigPath])
                { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"ctl {verb}: {text}");
            return text;
        }

        public long Snapshots() => long.Parse(Ctl("status").Split('\n').Single(l => l.StartsWith("snapshots: ", StringComparison.Ordinal))["snapshots: ".Length..]);

        public int Hook(string context, string job)
        {
            using var p = Install.StartSlurmHook(context, job);
            Assert.True(p.WaitForExit(60_000));
            return p.ExitCode;
        }

        /// <summary>Processes running a node sampler with this installation's config (in argv from exec, in the
        /// environment from a Slurm hook).</summary>
        public int NodeSamplers() => NodeSamplerPids().Count;

        public List<int> NodeSamplerPids() => Directory.EnumerateDirectories("/proc").Where(d =>
        {
            try
            {
                var argv = File.ReadAllText(Path.Combine(d, "cmdline")).Split('\0');
                return argv.Contains("node-sampler") && (argv.Contains(Install.ConfigPath)
                    || File.ReadAllText(Path.Combine(d, "environ")).Split('\0').Contains("ALUMET_HPC_CONFIG=" + Install.ConfigPath));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
        }).Select(d => int.Parse(Path.GetFileName(d))).ToList();

        public void Dispose()
        {
            Install.Dispose();
            Cgroups.Dispose();
            Proc.Dispose();
        }
    }

    private static List<(DateTime T, string Consumer, string Domain, long E)> Rows(string parquetGlob)
    {
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = $"SELECT timestamp, consumer, domain, energy_raw FROM read_parquet('{parquetGlob}') ORDER BY timestamp, domain, consumer";
        using var r = cmd.ExecuteReader();
        var rows = new List<(DateTime, string, string, long)>();
        while (r.Read()) rows.Add((r.GetDateTime(0), r.GetString(1), r.GetString(2), r.GetInt64(3)));
        return rows;
    }

    /// <summary>
    /// A Slurm job and an exec share the node. Each step is written while the sampler is paused (package energy, both
    /// cgroups' CPU time, /proc/stat busy time) and taken by the one snapshot after resume, so every interval's split
    /// is known exactly: job = floor(E × cpu / max(busy, Σ cpu)), unattributed = the rest. Fails on 722bf85, where
    /// exec sampled in-process and charged itself the whole node (counted twice).
    /// </summary>
    [Fact]
    public void ExecGoesThroughTheRunningNodeSamplerAndTheSplitConservesExactlyInEveryInterval()
    {
        using var lab = new Lab();
        lab.Cgroups.SetV1Usage($"{Hierarchy}/slurm/uid_0/job_701", 0);
        Assert.Equal(0, lab.Hook("prolog_slurmd", "701"));
        Assert.Equal(1, lab.NodeSamplers());

        using var exec = new ExecBinaryTests.RunningExec(lab.Install, "7", "--no-report");
        string execCgroup = $"{Hierarchy}/alumet/exec_7";
        ExecBinaryTests.WaitFor(() => File.Exists(Path.Combine(lab.State("exec", "7"), JobRegistration.File)), "exec's registration with the node sampler");
        Assert.True(Directory.Exists(lab.Cgroups.PathOf(execCgroup)), "exec created its cgroup before registering");
        Assert.Contains($" cgroup={lab.Cgroups.PathOf(execCgroup)} ", File.ReadAllText(Path.Combine(lab.State("exec", "7"), JobRegistration.File)));
        lab.Cgroups.SetV1Usage(execCgroup, 0);
        Assert.Equal(1, lab.NodeSamplers()); // exec started no sampler of its own

        // (package µJ, Slurm job cpu ns, exec cpu ns, node busy ticks of 10 ms)
        var steps = new (ulong E, ulong Slurm, ulong Exec, ulong BusyTicks)[]
        {
            (10_000_001, 100_000_000, 300_000_000, 50), // busy 500 ms is the denominator: 2 000 000 + 6 000 000, 2 000 001 unattributed
            (7_000_003, 200_000_000, 200_000_000, 20),  // Σ cgroups 400 ms > busy 200 ms: 3 500 001 each, 1 left
            (3_000_000, 0, 70_000_000, 10),             // the Slurm job idle: exec 2 100 000 of 100 ms
        };
        ulong energy = 0, slurmCpu = 0, execCpu = 0, busy = 0;
        foreach (var s in steps)
        {
            lab.Ctl("pause");
            long before = lab.Snapshots(); // status takes the registry lock: no snapshot is under way past this line
            energy += s.E; slurmCpu += s.Slurm; execCpu += s.Exec; busy += s.BusyTicks;
            lab.Install.Powercap.SetEnergy("intel-rapl:0", energy);
            lab.Cgroups.SetV1Usage($"{Hierarchy}/slurm/uid_0/job_701", slurmCpu);
            lab.Cgroups.SetV1Usage(execCgroup, execCpu);
            lab.Proc.SetStat(busy, 0);
            lab.Ctl("resume");
            ExecBinaryTests.WaitFor(() => lab.Snapshots() > before, "the snapshot after resume");
        }
        var (rc, _, stderr) = exec.Finish();
        Assert.True(rc == 0, stderr);
        Assert.Equal(0, lab.Hook("epilog_slurmd", "701"));
        ExecBinaryTests.WaitFor(() => lab.NodeSamplers() == 0, "the node sampler's exit (linger_s = 0)", 30);

        // The node file: every interval conserves exactly, and the package's nonzero intervals are the three steps.
        var node = Rows(Path.Combine(lab.Install.Config.Paths.DataDir, "test", "node", "node1", "*.parquet"));
        foreach (var interval in node.GroupBy(r => (r.T, r.Domain)))
        {
            long total = interval.Single(r => r.Consumer == "node").E;
            Assert.Equal(total, interval.Where(r => r.Consumer != "node").Sum(r => r.E));
        }
        var package = node.Where(r => r.Domain == "cpu_package:0").GroupBy(r => r.T).Where(g => g.Single(r => r.Consumer == "node").E > 0)
            .Select(g => (Node: g.Single(r => r.Consumer == "node").E, Slurm: g.Single(r => r.Consumer == "job:701").E,
                          Exec: g.Single(r => r.Consumer == "job:7").E, Unattributed: g.Single(r => r.Consumer == "unattributed").E))
            .ToList();
        Assert.Equal(new (long, long, long, long)[]
        {
            (10_000_001, 2_000_000, 6_000_000, 2_000_001),
            (7_000_003, 3_500_001, 3_500_001, 1),
            (3_000_000, 0, 2_100_000, 900_000),
        }, package);

        // The exec's row and file: its share only (the node is not its own), recorded as split by CPU time.
        using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("7"));
        Assert.Equal((JobStatus.Complete, ""), (row.Status, row.Reason));
        Assert.Equal(("exec", "node1", "cgroup-cpu-time"), (row.Scheduler, row.Node, row.AttributionMode));
        Assert.Equal(11.600001, row.Energy.PackageJ, 12);
        var execRows = Rows(row.ParquetPath);
        Assert.DoesNotContain(execRows, r => r.Consumer is "node" or "unattributed" or "job:701");
        Assert.Equal(11_600_001, execRows.Where(r => r.Domain == "cpu_package:0").Sum(r => r.E));
        var slurm = Assert.Single(db.GetJob("701"));
        Assert.Equal(5.500001, slurm.Energy.PackageJ, 12);
        // The project's own checker agrees on every file of the node (the data dir: both jobs' files and the node file).
        var check = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["parquet", "check", lab.Install.Config.Paths.DataDir])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string checkOut = check.StandardOutput.ReadToEnd() + check.StandardError.ReadToEnd();
        check.WaitForExit();
        Assert.True(check.ExitCode == 0, checkOut);
    }

    /// <summary>The command is born in its own cgroup (real cgroup filesystem of this machine), which is gone after.</summary>
    [Fact]
    public void TheCommandRunsInItsOwnCgroupWhichIsRemovedAfterIt()
    {
        if (ExecCgroup.Hierarchy("/sys/fs/cgroup") is not var (hierarchy, version)) return; // no cgroup v1/v2 mount here
        using var install = ExecBinaryTests.NewInstall("linger_s = 0");
        string id = ExecIds.Next();
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(),
            ["exec", "--config", install.ConfigPath, "--job-id", id, "--no-report", "--", "cat", "/proc/self/cgroup"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        Assert.Equal("", stderr);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        Assert.Equal("exclusive", Assert.Single(db.GetJob(id)).AttributionMode); // alone on the node: the whole node, as before
        // "id:controllers:path" of the hierarchy exec chose (v2: "0::path").
        Assert.Contains(stdout.Split('\n').Select(l => l.Split(':', 3)).Where(f => f.Length == 3), f => f[2] == $"/alumet/exec_{id}"
            && (version == CgroupVersion.V2 ? f[0] == "0" : f[1].Split(',').Order().SequenceEqual(Path.GetFileName(hierarchy).Split(',').Order())));
        Assert.False(Directory.Exists(Path.Combine(hierarchy, "alumet", $"exec_{id}")), "the cgroup is removed after the command");
    }

    /// <summary>A command that leaves a process running keeps its cgroup busy: exec says so, and removes nothing else.</summary>
    [Fact]
    public void ACgroupKeptBusyByALeftoverProcessIsANote()
    {
        if (ExecCgroup.Hierarchy("/sys/fs/cgroup") is not var (hierarchy, _)) return; // no cgroup v1/v2 mount here
        using var install = ExecBinaryTests.NewInstall("linger_s = 0");
        string id = ExecIds.Next();
        string pidFile = install.PathOf("left.pid"), dir = Path.Combine(hierarchy, "alumet", $"exec_{id}");
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(),
            ["exec", "--config", install.ConfigPath, "--job-id", id, "--no-report", "--", "sh", "-c", $"sleep 30 </dev/null >/dev/null 2>&1 & echo $! > '{pidFile}'"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        try
        {
            Assert.Equal(0, p.ExitCode);
            Assert.Equal($"alumet-hpc: exec: note: cgroup {dir} not removed: Device or resource busy (processes the command left running are still in it)\n", stderr);
            Assert.True(Directory.Exists(dir));
        }
        finally
        {
            using (var left = Process.GetProcessById(int.Parse(File.ReadAllText(pidFile).Trim()))) { left.Kill(); left.WaitForExit(); }
            ExecBinaryTests.WaitFor(() => ExecCgroup.Remove(dir) is null, "the emptied cgroup's removal");
        }
    }

    /// <summary>One job id, one command: a second exec with the --job-id of a running one is refused before it runs.</summary>
    [Fact]
    public void ASecondExecWithTheJobIdOfARunningOneIsRefused()
    {
        if (ExecCgroup.Hierarchy("/sys/fs/cgroup") is not var (hierarchy, _)) return; // no cgroup v1/v2 mount here
        using var install = ExecBinaryTests.NewInstall("linger_s = 0");
        string id = ExecIds.Next();
        using var first = new ExecBinaryTests.RunningExec(install, id, "--no-report");
        string dir = Path.Combine(hierarchy, "alumet", $"exec_{id}");
        ExecBinaryTests.WaitFor(() => File.Exists(Path.Combine(install.Config.Paths.StateDir, "exec", id, Alumet.Hpc.Jobs.JobRegistration.File)), "the first exec's registration");
        string marker = install.PathOf("second-ran");
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", install.ConfigPath, "--job-id", id, "--", "touch", marker])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(2, p.ExitCode);
        Assert.Equal($"alumet-hpc: exec: exec job {id} is already running (another exec holds its cgroup {dir}); give another --job-id (nothing was measured)\n", stderr);
        Assert.False(File.Exists(marker));
        var (rc, _, err) = first.Finish();
        Assert.True(rc == 0, err);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        Assert.Equal(JobStatus.Complete, Assert.Single(db.GetJob(id)).Status);
    }

    /// <summary>
    /// An id exec picked itself (no --job-id) whose cgroup another exec holds — one of another installation on this node
    /// (its own state_dir counts from 1 too: the cgroup is the node's), or a command a killed exec left running — is
    /// skipped for the next one: the user gave no id, so "give another --job-id" would be no answer.
    /// </summary>
    [Fact]
    public void AnIdPickedByExecWhoseCgroupAnotherExecHoldsIsSkipped()
    {
        using var lab = new Lab();
        string parent = Path.Combine(lab.Cgroups.Root, Hierarchy, ExecCgroup.Parent), held = Path.Combine(parent, ExecCgroup.Name("1"));
        Directory.CreateDirectory(held);
        using var holder = Process.Start(new ProcessStartInfo("flock", ["--exclusive", held, "sleep", "300"]))!; // as a running exec does
        try
        {
            ExecBinaryTests.WaitFor(() => !ExecCgroupFree(held), "the other exec's lock on its cgroup");
            var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", lab.Install.ConfigPath, "--no-report", "--", "true"])
                { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, stderr);
            // (A generated tree's cgroup keeps the cgroup.procs file exec wrote: its rmdir is refused, which exec notes.)
            Assert.DoesNotContain("exec_1", stderr);
            using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
            Assert.Empty(db.GetJob("1"));
            Assert.Equal(JobStatus.Complete, Assert.Single(db.GetJob("2")).Status);
            Assert.False(Directory.Exists(lab.State("exec", "1")), "no state dir left for the skipped id");
            Assert.Equal("3", File.ReadAllText(Path.Combine(lab.Install.Config.Paths.StateDir, "exec", "next-id")).Trim());
            Assert.True(Directory.Exists(held), "the other exec's cgroup untouched");
        }
        finally { holder.Kill(); holder.WaitForExit(); }

        // Whether the cgroup dir's lock is free (flock -n on it succeeds).
        static bool ExecCgroupFree(string dir)
        {
            using var probe = Process.Start(new ProcessStartInfo("flock", ["--nonblock", "--exclusive", dir, "true"]))!;
            probe.WaitForExit();
            return probe.ExitCode == 0;
        }
    }

    [Fact]
    public void WithoutACgroupHierarchyExecSaysSoAndIsChargedTheWholeNode()
    {
        using var empty = new CgroupTree();
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nlinger_s = 0",
            pathsToml: $"cgroup_root = \"{empty.Root}\"");
        string id = ExecIds.Next();
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", install.ConfigPath, "--job-id", id, "--no-report", "--", "true"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.Equal($"alumet-hpc: exec: note: no cgroup hierarchy that accounts CPU time under {empty.Root} (neither cgroup v2 nor a v1 cpuacct mount); the whole node is charged to the command\n", stderr);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(id));
        Assert.Equal((JobStatus.Complete, "exclusive"), (row.Status, row.AttributionMode));
    }

    [Fact]
    public void ARelativeConfigPathReachesTheNodeSamplerItStarts()
    {
        // The node sampler starts in "/" (it must not hold the caller's directory); `exec --config ./alumet.toml`
        // from the config's directory used to start one that could not find its config, and exec waited 8 s and
        // refused to run the command ("no node sampler is running").
        using var lab = new Lab();
        string id = ExecIds.Next();
        string dir = Path.GetDirectoryName(lab.Install.ConfigPath)!, relative = Path.Combine(".", Path.GetFileName(lab.Install.ConfigPath));
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", relative, "--job-id", id, "--no-report", "--", "true"])
            { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        Assert.DoesNotContain("not registered", stderr);
        using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(id));
        Assert.Equal(("exec", JobStatus.Complete), (row.Scheduler, row.Status));
    }

    [Fact]
    public void ANodeSamplerThatCannotStartIsSaidAtOnceNotAfterTheWait()
    {
        // A directory where the node lock goes: the sampler it starts fails (logged) and exits 1. exec says that
        // sampler exited and where its reason is, instead of "no node sampler is running ... after 8 s".
        using var lab = new Lab();
        Directory.CreateDirectory(Path.Combine(lab.Install.Config.Paths.StateDir, "node", NodeSamplerHost.LockFile));
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", lab.Install.ConfigPath, "--job-id", "99", "--no-report", "--", "true"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(2, p.ExitCode);
        Assert.Contains($"alumet-hpc: exec: job 99 not registered: the node sampler it started exited at start with status 1; its reason is in {lab.Install.Config.Paths.LogFile} (the command was not run)", stderr);
        Assert.Contains("node sampler failed: ", File.ReadAllText(lab.Install.Config.Paths.LogFile));
        Assert.Equal(0, lab.NodeSamplers());
    }

    [Fact]
    public void AFinalizationThatThrowsAnUnexpectedErrorLeavesTheNodeSamplerRunning()
    {
        // A binary installed without libe_sqlite3.so beside it: the row cannot be written (TypeInitializationException
        // around DllNotFoundException). The node sampler used to die on it (an exception escaping its socket thread),
        // ending the measurement of every other job on the node, and said "A type initializer threw an exception".
        using var lab = new Lab();
        string solo = Directory.CreateTempSubdirectory("alumet-solo-").FullName;
        try
        {
            string bin = Path.Combine(solo, "alumet-hpc");
            Executables.Copy(TestInstallation.Binary(), bin, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            string config = File.ReadAllText(lab.Install.ConfigPath).Replace("linger_s = 0", "linger_s = 60");
            File.WriteAllText(lab.Install.ConfigPath, config);
            var p = Process.Start(new ProcessStartInfo(bin, ["exec", "--config", lab.Install.ConfigPath, "--job-id", "90", "--no-report", "--", "true"])
                { RedirectStandardOutput = true, RedirectStandardError = true })!;
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode); // the command's own exit code
            Assert.Contains("native library 'e_sqlite3' not found (install the libraries of out/bin beside alumet-hpc: README \"Install\")", stderr);
            Assert.DoesNotContain("type initializer", File.ReadAllText(lab.Install.Config.Paths.LogFile));
            int daemon = Assert.Single(lab.NodeSamplerPids());
            Thread.Sleep(500);
            Assert.Equal([daemon], lab.NodeSamplerPids()); // it survived the failed finalization
            Assert.True(lab.Snapshots() > 0, "it still answers ctl status");
            using var proc = Process.GetProcessById(daemon);
            proc.Kill();
            proc.WaitForExit(5000);
        }
        finally { Directory.Delete(solo, recursive: true); }
    }

    [Theory]
    [InlineData("--rapl-hz", "100", "rapl_hz")]
    [InlineData("--storage-period-ms", "500", "storage_period_ms")]
    public void AsRootTheNodesRatesAreNotSetPerCommand(string option, string value, string key)
    {
        using var install = ExecBinaryTests.NewInstall();
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", install.ConfigPath, option, value, "--", "true"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(2, p.ExitCode);
        Assert.Equal($"alumet-hpc: exec: {option} sets the node sampler's rate, which every job on the node shares; use `alumet-hpc ctl set {key}=VALUE` or [sampler] in the config (per command, only --storage-period-ms 0, raw storage, can be asked)\n", stderr);
        Assert.False(File.Exists(install.Config.Paths.Database));
    }

    /// <summary>
    /// Not root: exec may not use the root-only socket nor make cgroups, and does not try: it samples in its own process,
    /// one exclusive job in the user's own files; no node sampler is started.
    /// </summary>
    [Fact]
    public void AnOrdinaryUsersExecSamplesInItsOwnProcess()
    {
        if (!File.Exists("/usr/bin/setpriv")) return;
        using var lab = new Lab();
        using var home = new TempTree("home");
        foreach (string d in new[] { home.Root, lab.Install.Root, lab.Install.Powercap.Root })
            File.SetUnixFileMode(d, (UnixFileMode)0b111_111_111);
        var p = Process.Start(new ProcessStartInfo("/usr/bin/setpriv",
            ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", $"HOME={home.Root}",
             TestInstallation.Binary(), "exec", "--config", lab.Install.ConfigPath, "--job-id", "96", "--no-report", "--", "true"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        Assert.Equal(0, lab.NodeSamplers());
        Assert.DoesNotContain("listening on", File.ReadAllText(lab.Install.PathOf("alumet-hpc.log"))); // no node sampler ran
        Assert.False(Directory.Exists(lab.Cgroups.PathOf($"{Hierarchy}/alumet")), "no cgroup");
        using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("96"));
        Assert.Equal((65534, "exclusive", JobStatus.Complete), (row.Uid, row.AttributionMode, row.Status));
    }

    /// <summary>kill -9 of the node sampler mid-command: the command goes on, its row is partial with the true reason.</summary>
    [Fact]
    public void ANodeSamplerKilledMidCommandGivesAPartialRowWithTheReason()
    {
        using var lab = new Lab();
        using var exec = new ExecBinaryTests.RunningExec(lab.Install, "8");
        ExecBinaryTests.WaitFor(() => File.Exists(Path.Combine(lab.State("exec", "8"), JobRegistration.File)), "exec's registration");
        lab.Install.Powercap.SetEnergy("intel-rapl:0", 4_000_000);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(lab.State("exec", "8"), "job:8", "cpu_package").Sum(r => r.Value) == 4_000_000, "the 4 J flushed");
        Process.GetProcessById(Assert.Single(lab.NodeSamplerPids())).Kill();
        ExecBinaryTests.WaitFor(() => lab.NodeSamplers() == 0, "the sampler's death");
        lab.Install.Powercap.SetEnergy("intel-rapl:0", 9_000_000); // after the death: not measured
        var (rc, _, stderr) = exec.Finish();
        Assert.True(rc == 0, stderr);
        Assert.Contains("the sampler died before the end of the job (crash or kill); data up to its last flush kept", stderr);

        using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("8"));
        Assert.Equal(JobStatus.Partial, row.Status);
        Assert.Equal("the sampler died before the end of the job (crash or kill); data up to its last flush kept", row.Reason);
        Assert.Equal(4.0, row.Energy.PackageJ, 12);
    }

    /// <summary>
    /// An exec that has shared the node, recovered by a restarted sampler (kill -9, then a new one) while alone: its
    /// row still says its share was split by CPU time, and partial for the restart.
    /// </summary>
    [Fact]
    public void ARecoveredExecThatHasSharedTheNodeKeepsItsAttributionMode()
    {
        using var lab = new Lab();
        Assert.Equal(0, lab.Hook("prolog_slurmd", "701"));
        using var exec = new ExecBinaryTests.RunningExec(lab.Install, "10", "--no-report");
        ExecBinaryTests.WaitFor(() => File.Exists(Path.Combine(lab.State("exec", "10"), JobRegistration.File)), "exec's registration");
        Assert.Equal(0, lab.Hook("epilog_slurmd", "701")); // exec alone from now on
        Process.GetProcessById(Assert.Single(lab.NodeSamplerPids())).Kill();
        ExecBinaryTests.WaitFor(() => lab.NodeSamplers() == 0, "the sampler's death");
        // A new sampler (as the systemd unit starts one) takes the exec job back; nothing else registers.
        using var restart = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["node-sampler", "--detach", "--config", lab.Install.ConfigPath])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        ExecBinaryTests.WaitFor(() => File.ReadAllText(lab.Install.PathOf("alumet-hpc.log")).Contains("job 10 registered (1 job(s) on the node, recovered after a sampler restart)"), "the recovery");
        var (rc, _, stderr) = exec.Finish();
        Assert.True(rc == 0, stderr);
        using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("10"));
        Assert.True(restart.WaitForExit(20_000), "the restarted sampler exits after its last job (linger_s = 0)");
        Assert.Equal((JobStatus.Partial, "cgroup-cpu-time"), (row.Status, row.AttributionMode));
        Assert.Contains("the node sampler restarted during the job", row.Reason);
    }

    /// <summary>
    /// An epilog that comes while a node sampler is starting — it holds the node lock and takes the registered jobs back
    /// before its socket listens — waits for it instead of taking it for dead and finalizing the job from its spool: the
    /// restarted sampler ends the job. Here the test holds the lock for that start (a sampler recovering many jobs, or
    /// compacting its heap after the recovery, is as long), then a real sampler takes it over.
    /// </summary>
    [Fact]
    public void AnEpilogWhileTheNodeSamplerStartsWaitsForItToListen()
    {
        using var lab = new Lab();
        Assert.Equal(0, lab.Hook("prolog_slurmd", "702"));
        Process.GetProcessById(Assert.Single(lab.NodeSamplerPids())).Kill();
        ExecBinaryTests.WaitFor(() => lab.NodeSamplers() == 0, "the sampler's death");
        // The killed sampler's lock goes with its last descriptor, a moment after its command line does (exit releases
        // the memory before the files): taken as the next sampler takes it, waiting.
        using var held = NodeSamplerHost.TryLock(Path.Combine(NodeSpool.Root(lab.Install.Config), NodeSamplerHost.LockFile), TimeSpan.FromSeconds(20));
        Assert.NotNull(held);
        using var epilog = lab.Install.StartSlurmHook("epilog_slurmd", "702");
        Thread.Sleep(1000); // the epilog has found nothing listening
        using var restart = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["node-sampler", "--detach", "--config", lab.Install.ConfigPath])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        Thread.Sleep(500); // it waits for the lock (NodeSamplerHost.LockWait)
        held.Dispose();
        Assert.True(epilog.WaitForExit(60_000));
        Assert.Equal(0, epilog.ExitCode);
        using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("702"));
        Assert.True(restart.WaitForExit(20_000), "the restarted sampler exits after its last job (linger_s = 0)");
        Assert.True(row.Status == JobStatus.Partial && row.Reason.Contains("the node sampler restarted during the job") && !row.Reason.Contains("died"),
            $"{row.Status}: {row.Reason}");
    }

    /// <summary>kill -9 of exec itself: the node sampler sees its owner gone and ends the job, partial, with the reason.</summary>
    [Fact]
    public void AnExecKilledMidCommandIsEndedByTheNodeSampler()
    {
        using var lab = new Lab();
        string pidFile = lab.Install.PathOf("command.pid");
        var psi = new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", lab.Install.ConfigPath, "--job-id", "9", "--", "sh", "-c", $"echo $$ > '{pidFile}'; exec sleep 30"])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        using var exec = Process.Start(psi)!;
        ExecBinaryTests.WaitFor(() => File.Exists(Path.Combine(lab.State("exec", "9"), JobRegistration.File)) && File.Exists(pidFile), "exec's registration and its command");
        exec.Kill(); // SIGKILL to exec alone: its command goes on
        exec.WaitForExit();
        ExecBinaryTests.WaitFor(() =>
        {
            if (!File.Exists(lab.Install.Config.Paths.Database)) return false;
            try
            {
                using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
                return db.GetJob("9").Count == 1;
            }
            catch (InvalidDataException) { return false; } // being created
        }, "the row");
        using var db = AccountingDb.OpenReadOnly(lab.Install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("9"));
        Assert.Equal(JobStatus.Partial, row.Status);
        Assert.Matches(@"^the exec process \(pid \d+\) that ran the command is gone \(crash or kill\) and did not end the job$", row.Reason);
        Process.GetProcessById(int.Parse(File.ReadAllText(pidFile).Trim())).Kill(); // the orphaned command
    }

    /// <summary>
    /// An exec's cgroup is its own from its mkdir, not from the moment its command is in it: between them the exec
    /// registers with the node sampler (and may make the dataset key), and a second exec of the same id then found an
    /// empty cgroup, removed it as a leftover and ran its command too (ExecNodeSamplerTests.ASecondExecWithTheJobIdOfA
    /// RunningOneIsRefused failed so in CI, 2026-12-02).
    /// </summary>
    [Fact]
    public void AnExecCgroupIsInUseFromItsCreationNotFromItsFirstProcess()
    {
        using var tree = new CgroupTree();
        tree.SetV1Usage("cpu,cpuacct", 0);
        var first = ExecCgroup.Create(tree.Root, "14", out string? problem, out bool inUse);
        Assert.True(first is not null && !inUse, problem);
        // No process in it yet (a generated tree: never any): the first exec is still registering.
        var second = ExecCgroup.Create(tree.Root, "14", out problem, out inUse);
        Assert.Equal((true, true, $"exec job 14 is already running (another exec holds its cgroup {first!.Directory})"), (second is null, inUse, problem));
        Assert.True(Directory.Exists(first.Directory)); // not removed as a leftover
    }

    [Fact]
    public void TheSamplerReadsAnExecCgroupOnlyWhereExecCreatesItAndOnlyRoots()
    {
        using var tree = new CgroupTree();
        tree.SetV1Usage("cpu,cpuacct", 0);
        var made = ExecCgroup.Create(tree.Root, "12", out string? problem, out _);
        Assert.True(made is not null, problem);
        Assert.Equal(tree.PathOf("cpu,cpuacct/alumet/exec_12"), made!.Directory);
        Assert.True(ExecCgroup.IsPathOf(tree.Root, "12", made.Directory, out _, out problem), problem);
        // Another job's id, another place, a path with "..": refused before anything is read.
        Assert.False(ExecCgroup.IsPathOf(tree.Root, "13", made.Directory, out _, out _));
        Assert.False(ExecCgroup.IsPathOf(tree.Root, "12", tree.PathOf("cpu,cpuacct/slurm/exec_12"), out _, out _));
        Assert.Null(JobRegistration.Parse($"scheduler=exec cluster=c job=12 user=root uid=0 node=n exclusive=0 raw=0 start=1 cgroup={tree.Root}/cpu,cpuacct/alumet/../x", out string? error));
        Assert.Contains("is not an absolute cgroup path", error);
        // A user's directory at the right place (delegated, or planted): refused.
        Assert.Equal(0, Alumet.Hpc.Native.Libc.chown(made.Directory, 65534, 65534));
        Assert.False(ExecCgroup.IsPathOf(tree.Root, "12", made.Directory, out _, out problem));
        Assert.Contains("not a directory of root's", problem);
        // A link at the right place: refused.
        Directory.Delete(made.Directory);
        Directory.CreateSymbolicLink(made.Directory, tree.Root);
        Assert.False(ExecCgroup.IsPathOf(tree.Root, "12", made.Directory, out _, out _));
        File.Delete(made.Directory);
        // A leftover (empty) exec cgroup of the same id is replaced, never reused.
        Directory.CreateDirectory(made.Directory);
        Assert.NotNull(ExecCgroup.Create(tree.Root, "12", out _, out _));

        var reg = new JobRegistration(new JobIdentity("exec", "c", "12", "root", 0, "n", "r1"), null, null, false, false, 5)
            { Cgroup = made.Directory, Owner = new SamplerPid(42, 777), ExclusiveWhenAlone = true };
        var back = JobRegistration.Parse(reg.ToLine(), out error);
        Assert.True(back is not null, error);
        Assert.Equal((made.Directory, new SamplerPid(42, 777), true), (back!.Cgroup, back.Owner, back.ExclusiveWhenAlone));
    }

    [Fact]
    public void ANodeSamplerRefusesAnExecCgroupOutsideItsRoot()
    {
        using var lab = new Lab();
        using var elsewhere = new CgroupTree();
        elsewhere.SetV1Usage("cpuacct/alumet/exec_31", 0);
        var job = new JobIdentity("exec", "local", "31", "root", 0, Environment.MachineName);
        var result = SamplerLauncher.Start(new SamplerLaunch(job, lab.Install.ConfigPath, [], null) { Cgroup = elsewhere.PathOf("cpuacct/alumet/exec_31") },
            lab.Install.Config, TestInstallation.Binary());
        Assert.False(result.Ok);
        Assert.Contains($"is not where exec puts job 31's cgroup under {lab.Cgroups.Root}", result.Message);
    }
}
