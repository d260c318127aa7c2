using System.Diagnostics;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// <c>alumet-hpc sample</c> through the native binaries (ALUMET_HPC_BIN, alumet-hpc-sampler beside it): the full binary
/// checks the arguments and replaces itself with <c>alumet-hpc-sampler sample</c> (same pid: the SIGTERM of whoever
/// started it ends the job), whose rows come from <c>alumet-hpc finalize-job</c> children (Jobs/OneJobSampler.cs).
/// </summary>
public class SampleBinaryTests
{
    private const ulong MaxRange = 262_143_328_850; // a real max_energy_range_uj

    private static TestInstallation NewInstall(PowercapTree tree, string sourcesToml = "rapl = \"on\"\nestimate = \"off\"\nnvml = \"off\"") =>
        new(tree, "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100", sourcesToml);

    private static string Sampler()
    {
        string sampler = Path.Combine(Path.GetDirectoryName(TestInstallation.Binary())!, SamplerLauncher.SamplerProgram);
        Assert.True(File.Exists(sampler), $"{sampler} missing: run make publish");
        return sampler;
    }

    private static Process Start(string program, params string[] args) => StartIn(null, null, program, args);

    /// <param name="configEnv">$ALUMET_HPC_CONFIG for the child (else the test's environment, without it).</param>
    private static Process StartIn(string? directory, string? configEnv, string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        if (directory is not null) psi.WorkingDirectory = directory;
        psi.Environment.Remove(Alumet.Hpc.Config.ConfigLoader.EnvVar);
        if (configEnv is not null) psi.Environment[Alumet.Hpc.Config.ConfigLoader.EnvVar] = configEnv;
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        return p;
    }

    private static (int ExitCode, string Stdout, string Stderr) Wait(Process p)
    {
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException("the sampler did not exit within 60 s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string[] SampleArgs(TestInstallation install, string jobId) =>
        ["sample", "--config", install.ConfigPath, "--scheduler", "exec", "--job-id", jobId, "--user", "root", "--uid", "0", "--node", "node1", "--exclusive"];

    private static string StateOf(TestInstallation install, string jobId) => Path.Combine(install.Config.Paths.StateDir, "exec", jobId);

    /// <summary>
    /// Starts <c>sample</c> of <paramref name="jobId"/> (job:ID) and returns once its counters are primed (its first records
    /// flushed). <paramref name="command"/>: what runs it, the sample's arguments after it (default: alumet-hpc);
    /// <paramref name="extra"/>: more arguments after them.
    /// </summary>
    private static Process StartSampling(TestInstallation install, string jobId, string[]? command = null, params string[] extra)
    {
        command ??= [TestInstallation.Binary()];
        var p = Start(command[0], [.. command[1..], .. SampleArgs(install, jobId), .. extra]);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(StateOf(install, jobId), $"job:{jobId}", "cpu_package").Count > 0, "the first flushed records (counters primed)");
        return p;
    }

    /// <summary>Moves socket 0's package counter to <paramref name="packageUj"/> and waits for the job's share of it in the spool.</summary>
    private static void Spend(TestInstallation install, string jobId, ulong packageUj)
    {
        install.Powercap.SetEnergy("intel-rapl:0", packageUj);
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(StateOf(install, jobId), $"job:{jobId}", "cpu_package").Sum(r => r.Value) == (long)packageUj, $"the {packageUj} µJ in the spool");
    }

    /// <summary>Sends <paramref name="signal"/> and waits for the sample to exit 0.</summary>
    private static string EndWith(Process p, int signal)
    {
        Alumet.Hpc.Native.Libc.kill(p.Id, signal);
        var (rc, stdout, stderr) = Wait(p);
        Assert.True(rc == 0, $"exit {rc}: {stderr}");
        return stdout + stderr;
    }

    /// <summary>The job's rows in the installation's database (none when there is no database).</summary>
    private static IReadOnlyList<JobRecord> RowsOf(TestInstallation install, string jobId)
    {
        if (!File.Exists(install.Config.Paths.Database)) return [];
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        return db.GetJob(jobId);
    }

    private static JobRecord RowOf(TestInstallation install, string jobId) => Assert.Single(RowsOf(install, jobId));

    /// <summary>
    /// <c>sample</c> run by root for a job makes (or closes, when an earlier version left it open) its scheduler's state
    /// directory root's only, as the hooks and root's <c>exec</c> do (HookHost.CloseSchedulerStateDir): on 242024c it was
    /// made 0755 and any user listed the node's job ids in it and read each one's status from its <c>.finalized</c> marker.
    /// </summary>
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void SampleRunByRootLeavesTheSchedulersStateDirRootsOnly(bool leftOpenBefore)
    {
        Skip.If(Alumet.Hpc.Native.Libc.getuid() != 0, "needs root (the state dir is closed for root's runs)");
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string slurmDir = Path.Combine(install.Config.Paths.StateDir, "slurm");
        if (leftOpenBefore) Directory.CreateDirectory(slurmDir, (UnixFileMode)0b111_101_101);
        using var p = Start(TestInstallation.Binary(), "sample", "--config", install.ConfigPath, "--scheduler", "slurm", "--job-id", "101",
            "--user", "root", "--uid", "0", "--node", "node1", "--exclusive");
        string state = Path.Combine(slurmDir, "101");
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:101", "cpu_package").Count > 0, "the first flushed records");
        EndWith(p, 15);
        Assert.True(File.Exists(Path.Combine(slurmDir, "101.finalized")), "no finalized marker");
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(slurmDir));
    }

    [Fact]
    public void SampleRunsInAlumetHpcSamplerUnderThePidItWasStartedWithAndSigtermWritesTheExactEnergy()
    {
        using var install = NewInstall(PowercapTree.Standard(2, MaxRange));
        install.Powercap.SetEnergy("intel-rapl:0", MaxRange - 1_000);
        install.Powercap.SetEnergy("intel-rapl:1:1", 7);
        string state = StateOf(install, "501");
        using var p = StartSampling(install, "501");

        // The pid the caller started now runs the lean binary: the full one is no longer mapped.
        Assert.Equal(Sampler(), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);
        Assert.Equal(OneJobSampler.Verb, File.ReadAllText($"/proc/{p.Id}/cmdline").Split('\0')[1]);

        install.Powercap.SetEnergy("intel-rapl:0", 4_000);      // wrapped: 1_001 + 4_000 µJ
        install.Powercap.SetEnergy("intel-rapl:1:1", 2_000_007); // dram of socket 1: 2 J
        ExecBinaryTests.WaitFor(() => ExecBinaryTests.Flushed(state, "job:501", "dram").Sum(r => r.Value) == 2_000_000
                                      && ExecBinaryTests.Flushed(state, "job:501", "cpu_package").Sum(r => r.Value) == 5_001, "the moves in the spool");
        EndWith(p, 15);

        var row = RowOf(install, "501");
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(0.005001, row.Energy.PackageJ, 12);
        Assert.Equal(2.0, row.Energy.DramJ, 12);
        Assert.Equal(2.005001, row.TotalEnergyJ, 12);
        Assert.Equal(2.005001, Convert.ToDouble(ExecBinaryTests.Scalar(
            $"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{row.ParquetPath}') WHERE consumer = 'job:501' AND resource_kind IN ('cpu_package','dram','gpu')")), 9);
        string[] log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        Assert.Single(log, l => l.Contains("job 501: sampling ("));
        Assert.Single(log, l => l.Contains("job 501: finalized complete"));
    }

    [Fact]
    public void AFinalizationThatFailsIsSaidOnceAndSampleExitsOne()
    {
        // The finalize-job child dies without an answer (an alumet-hpc beside the sampler that exits 3): no row, no file.
        // Whoever ran sample must learn it from the exit code, and the reason must be said once (log and stderr).
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string bin = install.PathOf("bin");
        Directory.CreateDirectory(bin);
        string full = Path.Combine(bin, "alumet-hpc-full");
        Executables.Copy(TestInstallation.Binary(), full);
        Executables.Copy(Sampler(), Path.Combine(bin, SamplerLauncher.SamplerProgram));
        Executables.Write(Path.Combine(bin, "alumet-hpc"), "#!/bin/sh\nexit 3\n");
        string state = StateOf(install, "509");
        using var p = StartSampling(install, "509", [full]);
        Alumet.Hpc.Native.Libc.kill(p.Id, 15);
        var (rc, _, stderr) = Wait(p);

        Assert.True(rc == 1, $"exit {rc}: {stderr}");
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.Contains("job 509: finalization failed"));
        Assert.Single(stderr.Split('\n'), l => l.Contains("job 509: finalization failed"));
        Assert.True(File.Exists(Path.Combine(state, "spool.bin")), "the spool is kept");
        Assert.False(File.Exists(install.Config.Paths.Database), "no row");
    }

    [Fact]
    public void InTheForegroundTheJobsOutcomeIsOnStderrOnceAsItIsInTheLog()
    {
        // The Parquet file and row come from a finalize-job child now: its log lines (the outcome, a queued row, a
        // failed export) must reach sample's stderr as the in-process finalization's did, and the log file once.
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        using var p = StartSampling(install, "508");
        Spend(install, "508", 1_000_000);
        string stderr = EndWith(p, 15);

        var row = RowOf(install, "508");
        string outcome = $"job 508: finalized complete, 1 J, {row.ParquetPath}; row stored in {install.Config.Paths.Database}";
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.Contains("job 508: finalized"));
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.EndsWith("] info: " + outcome, StringComparison.Ordinal));
        Assert.Single(stderr.Split('\n'), l => l.Contains("job 508: finalized"));
        Assert.Contains("alumet-hpc: info: " + outcome + "\n", stderr);
    }

    [Fact]
    public void AConfigFromTheEnvironmentThatIsMissingIsNamedAsSuchInTheError()
    {
        // No --config: the caller's $ALUMET_HPC_CONFIG is the file, and the fix is to check it, not "the --config path".
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string missing = install.PathOf("missing.toml");
        string[] args = [.. SampleArgs(install, "509").Where((_, i) => i is not (1 or 2))]; // without --config FILE
        var (rc, stdout, stderr) = Wait(StartIn(null, missing, TestInstallation.Binary(), args));
        Assert.Equal($"alumet-hpc: {missing}: config file not found; check ALUMET_HPC_CONFIG (or unset it to use /etc/alumet-hpc/alumet.toml)\n", stderr);
        Assert.Equal((2, ""), (rc, stdout));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // --config "": absent, as ConfigLoader reads it (the environment's file, not an error)
    public void ARelativeConfigFromTheEnvironmentIsTheCallersFileForTheSamplerAndItsFinalizer(bool emptyConfigOption)
    {
        // The finalize-job child runs in "/": it must be told the file the caller's relative $ALUMET_HPC_CONFIG names.
        using var install = NewInstall(new PowercapTree(), "rapl = \"auto\"\nestimate = \"off\"\nnvml = \"off\"");
        string[] args = [.. SampleArgs(install, "510").Where((_, i) => i is not (1 or 2))];
        if (emptyConfigOption) args = [.. args, "--config", ""];
        var (rc, _, stderr) = Wait(StartIn(Path.GetDirectoryName(install.ConfigPath), Path.GetFileName(install.ConfigPath), TestInstallation.Binary(), args));
        Assert.True(rc == 0, stderr);
        var row = RowOf(install, "510");
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        Assert.StartsWith("no energy source on this node: ", row.Reason);
    }

    [Fact]
    public void SigintEndsTheJobAsSigtermDoes()
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        using var p = StartSampling(install, "506");
        Spend(install, "506", 4_000_000);
        EndWith(p, 2);
        var row = RowOf(install, "506");
        Assert.Equal((JobStatus.Complete, 4.0), (row.Status, row.TotalEnergyJ));
    }

    [SkippableTheory]
    [InlineData(15, false, false)]
    [InlineData(2, false, false)]
    [InlineData(1, false, false)]
    [InlineData(15, true, false)] // --detach: its clean signal mask comes after the handlers
    [InlineData(15, false, true)] // alumet-hpc alone: it samples in-process, the pre-Main finalizer thread blocks them too
    [InlineData(1, false, true)]
    public void ASignalBeforeTheSamplersHandlersEndsTheJobWithItsRow(int signal, bool detach, bool fullBinaryAlone)
    {
        // Until the sampler has registered its handlers a SIGTERM (SIGINT, SIGHUP) takes the default action: the process
        // dies with no row and no file. The sampler is held here in its read of its config, a FIFO, which comes before
        // its handlers: the signal lands then, and only then is the config given. It must wait for the handlers and end
        // the job as it would have a minute later: exit 0, one row and its file (0 J: no counter moved).
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string config = install.PathOf("held.toml");
        using (var mkfifo = Process.Start("mkfifo", ["-m", "600", config])) mkfifo.WaitForExit();
        string[] args = [.. SampleArgs(install, "513").Select(a => a == install.ConfigPath ? config : a), .. detach ? new[] { "--detach" } : []];
        string program = fullBinaryAlone ? AlumetHpcAlone(install) : TestInstallation.Binary();
        using var p = Start(program, args);
        int rc;
        string stderr;
        try
        {
            int fd = -1; // the FIFO's write end: opens once the sampler opened the read end
            ExecBinaryTests.WaitFor(() => (fd = Alumet.Hpc.Native.Libc.open(config, 0x1 | 0x800 /* O_WRONLY | O_NONBLOCK */)) >= 0, "the sampler's open of its config");
            Assert.Equal(fullBinaryAlone ? program : Sampler(), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);
            Skip.If((Convert.ToUInt64(Status(p.Id, "SigIgn"), 16) & (1UL << (signal - 1))) != 0, $"this test runs with signal {signal} ignored (nohup?): it never ends a job");
            Alumet.Hpc.Native.Libc.kill(p.Id, signal);
            File.Copy(install.ConfigPath, config + ".file");
            File.Move(config + ".file", config, overwrite: true); // the finalize-job children read a plain file
            using (var writer = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0))
            {
                try { writer.Write(File.ReadAllBytes(install.ConfigPath)); } // a few hundred bytes: within the pipe's buffer
                catch (IOException) { } // the reader is gone: killed by the signal
            }
            (rc, _, stderr) = Wait(p);
        }
        finally { if (!p.HasExited) p.Kill(); } // still held in its FIFO when an assertion or the skip came first

        var rows = RowsOf(install, "513");
        Assert.True(rows.Count == 1 && rc == 0, $"{rows.Count} rows; the sample exited {rc}: {stderr}");
        Assert.Equal((JobStatus.Complete, 0.0), (rows[0].Status, rows[0].TotalEnergyJ));
        Assert.Equal("rows 3, energy 0", ExecBinaryTests.Scalar( // one interval, one row per counter (package, cores, dram)
            $"SELECT 'rows ' || count(*) || ', energy ' || sum(energy_raw) FROM read_parquet('{rows[0].ParquetPath}') WHERE consumer = 'job:513'"));
    }

    /// <summary>A directory with alumet-hpc and SQLite's library but no alumet-hpc-sampler: returns its alumet-hpc.</summary>
    private static string AlumetHpcAlone(TestInstallation install)
    {
        string bin = install.PathOf("bin");
        Directory.CreateDirectory(bin);
        string from = Path.GetDirectoryName(TestInstallation.Binary())!;
        File.Copy(Path.Combine(from, "libe_sqlite3.so"), Path.Combine(bin, "libe_sqlite3.so")); // loaded (mmap), never run: no ETXTBSY
        return Executables.Copy(Path.Combine(from, "alumet-hpc"), Path.Combine(bin, "alumet-hpc"));
    }

    [Fact]
    public void ASecondCtrlCOrAHangupDuringTheFinalizationLosesNeitherTheRowNorTheFile()
    {
        // In a terminal, Ctrl-C, Ctrl-\ and a hangup go to the whole foreground process group: while the sample finalizes,
        // to its finalize-job child too. Here the sample leads its own group (setsid: the test host is not in it), and the
        // child is held in its read of the node's calibration model, a FIFO (JobFinalizer: between the row's summary and
        // the Parquet export), while the group gets the second Ctrl-C and the hangup, and the child a Ctrl-\.
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string calibration = install.PathOf("calibration");
        File.AppendAllText(install.ConfigPath, $"\n[calibration]\ndir = \"{calibration}\"\n");
        Directory.CreateDirectory(calibration, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string model = Alumet.Hpc.Calibration.WallModel.PathFor(calibration, "node1");
        using (var mkfifo = Process.Start("mkfifo", ["-m", "600", model])) mkfifo.WaitForExit();
        using var p = StartSampling(install, "512", ["/usr/bin/setsid", TestInstallation.Binary()]);
        string stat = File.ReadAllText($"/proc/{p.Id}/stat");
        Assert.Equal(p.Id.ToString(), stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[2]); // process group: its own
        Spend(install, "512", 3_000_000);

        Alumet.Hpc.Native.Libc.kill(-p.Id, 2); // the first Ctrl-C: ends the job
        // The writer's open succeeds once the finalizer opened the model; the finalizer then waits in its read until we close.
        int writer = -1;
        ExecBinaryTests.WaitFor(() => (writer = Alumet.Hpc.Native.Libc.open(model, 0x1 | 0x800 /* O_WRONLY | O_NONBLOCK */)) >= 0, "the finalizer's read of the calibration model");
        int child = Assert.Single(ChildrenOf(p.Id), c => File.ReadAllText($"/proc/{c}/cmdline").Split('\0').Contains(FinalizerProcess.Command));
        Alumet.Hpc.Native.Libc.kill(-p.Id, 2); // the second Ctrl-C
        Alumet.Hpc.Native.Libc.kill(-p.Id, 1); // the terminal closed
        Alumet.Hpc.Native.Libc.kill(child, 3); // Ctrl-\, to the child only (the sampler dumps core on it, as it always did)
        try
        {
            ExecBinaryTests.WaitFor(() => Status(child, "State") is null or ['Z', ..]
                                          || (Convert.ToUInt64(Status(child, "ShdPnd"), 16) & 0b111) == 0b111, "the signals dead or pending in the child");
        }
        catch (TimeoutException) { } // handled some other way than blocked: the row and file below still say whether it survived
        Alumet.Hpc.Native.Libc.close(writer); // the model is empty: no wall-side energy, the export goes on
        var (rc, _, stderr) = Wait(p);

        var rows = RowsOf(install, "512");
        Assert.True(rows.Count == 1, $"{rows.Count} rows; the sample exited {rc}: {stderr}");
        Assert.Equal((JobStatus.Complete, 3.0), (rows[0].Status, rows[0].TotalEnergyJ));
        Assert.Equal(3.0, Convert.ToDouble(ExecBinaryTests.Scalar(
            $"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{rows[0].ParquetPath}') WHERE consumer = 'job:512' AND resource_kind = 'cpu_package'")), 9);
        Assert.True(rc == 0, stderr); // as an undisturbed sample (SigintEndsTheJobAsSigtermDoes)
        Assert.Single(stderr.Split('\n'), l => l.Contains("job 512: finalized complete, 3 J"));
    }

    /// <summary>A field of /proc/PID/status, or null once the process is gone.</summary>
    private static string? Status(int pid, string field)
    {
        try { return File.ReadAllLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal))?[(field.Length + 1)..].Trim(); }
        catch (IOException) { return null; }
    }

    /// <summary>The pids whose parent is <paramref name="pid"/> (any of its threads forked them).</summary>
    private static int[] ChildrenOf(int pid) =>
        [.. Directory.GetDirectories($"/proc/{pid}/task").SelectMany(t => File.ReadAllText(Path.Combine(t, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries)).Select(int.Parse)];

    [Theory]
    [InlineData("--job-id", "x", "--job-id \"x\" is not a numeric job id")]
    [InlineData("--sluid", "a b", "--sluid \"a b\" is not a SLUID")] // the registration carries it: the lean binary would refuse it
    public void ABadArgumentToSampleIsOneSentenceAndExitTwo(string option, string value, string error)
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string[] args = SampleArgs(install, "507");
        int at = Array.IndexOf(args, option);
        args = at >= 0 ? [.. args[..(at + 1)], value, .. args[(at + 2)..]] : [.. args, option, value];
        var (rc, stdout, stderr) = Wait(Start(TestInstallation.Binary(), args));
        Assert.Equal((2, "", $"alumet-hpc: sample: {error}\n"), (rc, stdout, stderr));
        Assert.False(Directory.Exists(install.Config.Paths.StateDir));
    }

    [Fact]
    public void DetachedSampleLeavesTheCallersSessionInTheLeanBinaryAndSigtermStillEndsIt()
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        using var p = StartSampling(install, "504", null, "--detach");
        Assert.Equal(Sampler(), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);
        string stat = File.ReadAllText($"/proc/{p.Id}/stat");
        Assert.Equal(p.Id.ToString(), stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[3]); // session id: its own (setsid)

        Spend(install, "504", 3_000_000);
        Assert.Equal("", EndWith(p, 15)); // stdio went to /dev/null

        var row = RowOf(install, "504");
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(3.0, row.TotalEnergyJ, 12);
    }

    [Fact]
    public void DetachedSampleKeepsNoDescriptorItsCallerLeftOpen()
    {
        // A hook's caller (slurmd, OAR, a shell) may leave a lock file or a pipe open without close-on-exec: the detached
        // sampler outlives the hook and must not hold it, as the prologs' daemon does not (SamplerLauncher.StartDaemon).
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string held = install.PathOf("left-open-by-the-caller");
        using var p = StartSampling(install, "511", ["/bin/sh", "-c", "exec 7>>\"$0\"; exec \"$@\"", held, TestInstallation.Binary()], "--detach");
        Assert.Equal(Sampler(), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);
        var open = new List<string>();
        foreach (string fd in Directory.GetFiles($"/proc/{p.Id}/fd"))
        {
            try { if (new FileInfo(fd).LinkTarget is { } target) open.Add(target); }
            catch (IOException) { } // closed meanwhile
        }
        Assert.DoesNotContain(held, open);

        Spend(install, "511", 2_000_000);
        Assert.Equal("", EndWith(p, 15));
        var row = RowOf(install, "511");
        Assert.Equal((JobStatus.Complete, 2.0), (row.Status, row.TotalEnergyJ));
    }

    [Theory]
    [InlineData(false, null)]
    [InlineData(true, "Permission denied")]
    public void WithoutARunnableAlumetHpcSamplerBesideItSampleSamplesInAlumetHpc(bool samplerNotExecutable, string? why)
    {
        // Only alumet-hpc installed (or an alumet-hpc-sampler that execve refuses): the job is still measured, by the
        // full binary itself, and a refused execve is logged once.
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string bin = Path.GetDirectoryName(AlumetHpcAlone(install))!;
        if (samplerNotExecutable) Executables.Copy(Sampler(), Path.Combine(bin, SamplerLauncher.SamplerProgram), (UnixFileMode)0b110_100_100);
        using var p = StartSampling(install, "505", [Path.Combine(bin, "alumet-hpc")]);
        Assert.Equal(Path.Combine(bin, "alumet-hpc"), new FileInfo($"/proc/{p.Id}/exe").LinkTarget);

        Spend(install, "505", 1_000_000);
        EndWith(p, 15);
        Assert.Equal(1.0, RowOf(install, "505").TotalEnergyJ, 12);
        string[] log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        if (why is null) Assert.DoesNotContain(log, l => l.Contains("sampling in alumet-hpc"));
        else Assert.Single(log, l => l.Contains($"job 505: could not run {Path.Combine(bin, SamplerLauncher.SamplerProgram)}: {why}; sampling in alumet-hpc"));
    }

    [Fact]
    public void WithNoEnergySourceTheLeanSamplerWritesTheNotMeasuredRowWithTheTrueReason()
    {
        using var install = NewInstall(new PowercapTree(), "rapl = \"auto\"\nestimate = \"off\"\nnvml = \"off\"");
        var job = new JobIdentity("exec", "local", "502", "root", 0, "node1", "20261201T150000000Z");
        using var p = Start(Sampler(), "sample", "--config", install.ConfigPath, OneJobSampler.Registration(job, null, null, exclusive: true).ToLine());
        var (rc, _, stderr) = Wait(p);
        Assert.True(rc == 0, stderr);

        var row = RowOf(install, "502");
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        Assert.StartsWith("no energy source on this node: ", row.Reason);
        Assert.Equal("20261201T150000000Z", row.RunId);
    }

    [Fact]
    public void ASamplerThatFailsToStartExitsOneAndItsNotMeasuredRowSaysWhy()
    {
        using var install = NewInstall(new PowercapTree()); // rapl = "on" over an empty tree
        var (rc, _, stderr) = Wait(Start(TestInstallation.Binary(), SampleArgs(install, "503")));
        Assert.True(rc == 1, stderr);

        var row = RowOf(install, "503");
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        Assert.StartsWith("sampler failed to start: ", row.Reason);
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.Contains("job 503: sampler failed: "));
    }

    [Fact]
    public void AStateDirThatCannotBeMadeIsSaidInOurWords()
    {
        // The runtime's own words ("Could not find file '…'.") were the sampler's; the rest of alumet-hpc says "X: no such file".
        // Not through /proc/self: root refuses a state_dir whose path holds a symbolic link (PlantedStateDirTests).
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        File.WriteAllText(install.ConfigPath, File.ReadAllText(install.ConfigPath).Replace($"state_dir = \"{install.Config.Paths.StateDir}\"", "state_dir = \"/proc/nope\""));
        var (rc, stdout, stderr) = Wait(Start(TestInstallation.Binary(), SampleArgs(install, "514")));
        Assert.Equal((1, ""), (rc, stdout));
        Assert.Equal("alumet-hpc: error: job 514: sampler failed: /proc/nope: no such file\n"
                     + "alumet-hpc: error: job 514: could not record the failure: /proc/nope: no such file\n", stderr);
    }

    [Theory]
    [InlineData("scheduler=exec cluster=local job=12x user=root uid=0 node=node1 exclusive=1 raw=0 start=0 run=r1", "job \"12x\" is not a job id")]
    [InlineData("scheduler=exec cluster=local job=12 user=root uid=0 node=node1 exclusive=1 raw=1 start=0 run=r1",
                "registration token \"raw=1\" is not one that alumet-hpc sample writes")]
    [InlineData("scheduler=exec cluster=local job=12 user=root uid=0 node=node1 exclusive=1 raw=0 start=0 run=r1 cgroup=/x",
                "registration token \"cgroup=/x\" is not one that alumet-hpc sample writes")]
    [InlineData("scheduler=exec cluster=local job=12 user=root uid=0 node=node1 exclusive=1 raw=0 start=0",
                "the registration has no run id (alumet-hpc sample always writes one)")]
    public void ABadRegistrationToTheLeanVerbIsOneSentenceAndExitTwo(string line, string error)
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        var (rc, stdout, stderr) = Wait(Start(Sampler(), "sample", "--config", install.ConfigPath, line));
        Assert.Equal(2, rc);
        Assert.Equal("", stdout);
        Assert.Equal($"alumet-hpc-sampler: sample: {error}\n", stderr);
        Assert.False(Directory.Exists(install.Config.Paths.StateDir));
    }

    private static string TooFewDescriptors(string program, int limit) =>
        $"{program}: error: too few file descriptors (RLIMIT_NOFILE is {limit}, hard limit {limit}; a sampler needs at least 32): raise it where the sampler is started (ulimit -n 1024, or LimitNOFILE= in its service)\n";

    /// <summary>
    /// <c>sample</c> and the node sampler (either binary) under a descriptor limit too small to sample, soft and hard
    /// (<c>prlimit --nofile=N</c>): one sentence, exit 1, nothing started (no state dir, no row). They ended with .NET's
    /// stack trace (4-5, exit 134: the first Console write needs a new descriptor), with nothing said (6-7) or with the
    /// runtime's "Too many open files" (8-16), exit 1.
    /// </summary>
    [Theory]
    [InlineData("alumet-hpc", "sample", 4)]
    [InlineData("alumet-hpc", "sample", 5)]
    [InlineData("alumet-hpc", "sample", 7)]
    [InlineData("alumet-hpc", "sample", 8)]
    [InlineData("alumet-hpc", "sample", 16)]
    [InlineData("alumet-hpc", "node-sampler", 8)]
    [InlineData("alumet-hpc-sampler", "node-sampler", 5)]
    [InlineData("alumet-hpc-sampler", "node-sampler", 16)]
    public void ATooSmallDescriptorLimitIsOneSentenceAndNothingStarts(string program, string verb, int limit)
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        string bin = program == "alumet-hpc" ? TestInstallation.Binary() : Sampler();
        string[] args = verb == "sample" ? SampleArgs(install, "71") : ["node-sampler", "--config", install.ConfigPath];
        // The limit counts every descriptor the sampler starts with: the child gets only 0, 1 and 2 (a descriptor the test
        // run inherited, such as a flock(1) lock around it, would otherwise take one of the N and move the loader's need).
        var (rc, stdout, stderr) = Wait(Start("/bin/bash", ["-c", OnlyStdioThenExec, $"{limit}", "/usr/bin/prlimit", $"--nofile={limit}", bin, .. args]));
        Assert.Equal((1, "", TooFewDescriptors(program, limit)), (rc, stdout, stderr));
        Assert.False(Directory.Exists(install.Config.Paths.StateDir));
        Assert.Empty(RowsOf(install, "71"));
    }

    /// <summary>bash -c: close every descriptor above 2, then exec the arguments ($0 is only bash's name for itself).</summary>
    private const string OnlyStdioThenExec =
        "for f in /proc/$$/fd/*; do n=${f##*/}; if [ \"$n\" -gt 2 ]; then eval \"exec $n>&-\"; fi 2>/dev/null; done; exec \"$@\"";

    /// <summary>
    /// A soft limit below what a sampler needs under a larger hard one (<c>prlimit --nofile=8:4096</c>) is raised: the job
    /// is measured to the µJ. And the limit it asks for is enough: at exactly 32 (soft and hard) the job is measured too.
    /// On 089dafd both ended with exit 1, "Too many open files" and no row.
    /// </summary>
    [Theory]
    [InlineData("8:4096")]
    [InlineData("32")]
    public void ASamplerRaisesASmallSoftLimitAndMeasuresTheJob(string limits)
    {
        using var install = NewInstall(PowercapTree.Standard(1, MaxRange));
        var p = StartSampling(install, "72", ["/usr/bin/prlimit", $"--nofile={limits}", TestInstallation.Binary()]);
        Spend(install, "72", 3_000_000);
        EndWith(p, 15);
        var row = RowOf(install, "72");
        Assert.Equal((JobStatus.Complete, 3.0), (row.Status, row.Energy.PackageJ));
    }

    /// <summary>The bare binary as slurmd runs a hook (the job in the environment), given only descriptors 0-2 and,
    /// with <paramref name="limits"/>, <c>prlimit --nofile=SOFT:HARD</c>; it must exit 0 and say nothing (its log says it).</summary>
    private static void HookUnder(TestInstallation install, string context, string jobId, string? limits)
    {
        string[] command = limits is null ? [TestInstallation.Binary()] : ["/usr/bin/prlimit", $"--nofile={limits}", TestInstallation.Binary()];
        using var p = install.StartSlurmHook(context, jobId, "/bin/bash", ["-c", OnlyStdioThenExec, "hook", .. command]);
        var (rc, stdout, stderr) = Wait(p);
        Assert.True((rc, stdout, stderr) == (0, "", ""), $"{context} {jobId}: exit {rc}, said {stdout}{stderr}");
    }

    private static List<string> HookLines(TestInstallation install, string what) =>
        File.ReadAllLines(install.Config.Paths.LogFile).Where(l => l.Contains(what, StringComparison.Ordinal)).ToList();

    /// <summary>
    /// The hooks raise a small soft RLIMIT_NOFILE as the samplers do (DescriptorLimit): under <c>8:4096</c> the prolog
    /// starts the node sampler and the job is measured. On dd629f5 the prolog could not start it ("could not register
    /// job 28 with the node sampler: An error occurred trying to start process '…/alumet-hpc-sampler' with working
    /// directory '/'. Too many open files") and the epilog recorded the job not_measured.
    /// </summary>
    [SkippableFact]
    public void AHookRaisesASmallSoftLimitAndTheJobIsMeasured()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0");
        HookUnder(install, "prolog_slurmd", "28", "8:4096");
        var said = HookLines(install, "slurm prolog job 28 on node1: ");
        Assert.True(said.Count == 1 && said[0].Contains(" info: slurm prolog job 28 on node1: job 28 registered (1 job(s) on the node); node sampler pid ", StringComparison.Ordinal),
            "the prolog's lines: " + string.Join(" / ", said));
        HookUnder(install, "epilog_slurmd", "28", "8:4096");
        Assert.Equal(JobStatus.Complete, RowOf(install, "28").Status);
    }

    /// <summary>
    /// Under a hard limit of 8 the prolog cannot start the node sampler: it exits 0 and its log says so in one sentence
    /// of ours, what and how to fix it (ErrorText), not the runtime's "An error occurred trying to start process '…' with
    /// working directory '/'. Too many open files" of dd629f5. The epilog records the job not_measured.
    /// </summary>
    [SkippableFact]
    public void AHookThatCannotStartTheNodeSamplerSaysWhyInOneSentence()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "attribution = \"exclusive\"\nlinger_s = 0");
        HookUnder(install, "prolog_slurmd", "29", "8");
        var said = Assert.Single(HookLines(install, "slurm prolog job 29 on node1: "));
        Assert.Matches(" error: slurm prolog job 29 on node1: could not register job 29 with the node sampler: cannot start "
            + System.Text.RegularExpressions.Regex.Escape(Sampler()) + @": too many open files \(RLIMIT_NOFILE is 8, hard limit 8\); raise the hard limit "
            + @"where this runs \(LimitNOFILE= in the service that starts it, e\.g\. slurmd's, or ulimit -Hn 1024\) \(\d+\.\d ms\)$", said);
        HookUnder(install, "epilog_slurmd", "29", null);
        Assert.Equal(JobStatus.NotMeasured, RowOf(install, "29").Status);
    }
}
