using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>
/// The real node sampler binary, started detached by <see cref="SamplerLauncher"/> as a prolog would (linger 0: it
/// exits with its last job), over a generated powercap tree whose counters the test moves: energies in the DB and
/// Parquet must be exactly the moves.
/// </summary>
public class SamplerProcessTests
{
    private const ulong MaxRange = 262_143_328_850; // a real max_energy_range_uj

    private static TestInstallation NewInstall() =>
        new(PowercapTree.Standard(2, MaxRange), "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20\nlinger_s = 0");

    private static JobIdentity Job(string id) => new("exec", "test", id, "root", 0, "node1");

    private static void WaitFor(Func<bool> condition, string what, double seconds = 10)
    {
        var end = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException($"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    private static long SpoolRecords(string dir) =>
        File.Exists(Path.Combine(dir, SpoolWriter.RecordsFile)) ? new FileInfo(Path.Combine(dir, SpoolWriter.RecordsFile)).Length / SpoolRecord.Size : 0;

    /// <summary>The job's share of one resource in the flushed spool, raw µJ.</summary>
    private static long FlushedJobEnergy(string dir, string jobId, string kind, string id)
    {
        var meta = SpoolWriter.ReadMeta(dir);
        return SpoolReader.ReadAll(dir)
            .Where(r => meta.Series[r.Series] is { } s && s.Consumer == $"job:{jobId}" && s.ResourceKind == kind && s.ResourceId == id)
            .Sum(r => r.Value);
    }

    private static LaunchResult Start(TestInstallation install, JobIdentity job)
    {
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
        Assert.True(launched.Ok, launched.Message);
        string dir = job.StateDirectory(install.Config.Paths.StateDir);
        WaitFor(() => SpoolRecords(dir) > 0, "the first flushed records (counters primed)");
        return launched;
    }

    [Fact]
    public void SigtermFinalizesCompleteWithTheExactEnergyAcrossAWrap()
    {
        using var install = NewInstall();
        var job = Job("101");
        install.Powercap.SetEnergy("intel-rapl:0", MaxRange - 1_000);
        install.Powercap.SetEnergy("intel-rapl:1:1", 7);
        var launched = Start(install, job);

        install.Powercap.SetEnergy("intel-rapl:0", 4_000);      // wrapped: 1_001 + 4_000 µJ
        install.Powercap.SetEnergy("intel-rapl:1:1", 2_000_007); // dram of socket 1: 2 J
        Thread.Sleep(300);
        string runIdInMeta = SpoolWriter.ReadMeta(job.StateDirectory(install.Config.Paths.StateDir)).RunId; // the state dir goes once finalized
        var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
        Assert.True(stop.Status == "stopped", stop.Message);
        WaitFor(() => !new SamplerPid(launched.Pid, ProcessState.StartTime(launched.Pid) ?? 0).IsAlive(), "sampler exit");

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("101"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(0.005001, row.Energy.PackageJ, 12);
        Assert.Equal(2.0, row.Energy.DramJ, 12);
        Assert.Equal(2.005001, row.TotalEnergyJ, 12);
        Assert.Equal(0, row.WrapAmbiguous);
        // the run id the prolog gave (--run-id: its start time) is in meta.json and the row's key
        Assert.Matches(@"^\d{8}T\d{9}Z$", row.RunId);
        Assert.Equal(row.RunId, runIdInMeta);

        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = $"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{row.ParquetPath}') WHERE consumer = 'job:101' AND resource_kind IN ('cpu_package','dram','gpu')";
        Assert.Equal(2.005001, Convert.ToDouble(cmd.ExecuteScalar()), 9);
    }

    [Fact]
    public void KillMinus9KeepsEveryFlushedSampleAndTheRowIsPartial()
    {
        using var install = NewInstall();
        var job = Job("102");
        var launched = Start(install, job);
        install.Powercap.SetEnergy("intel-rapl:0", 3_000_000);
        string dir = job.StateDirectory(install.Config.Paths.StateDir);
        WaitFor(() => FlushedJobEnergy(dir, "102", "cpu_package", "0") == 3_000_000, "the 3 J to reach the spool as the job's share");

        Alumet.Hpc.Native.Libc.kill(launched.Pid, 9);
        WaitFor(() => ProcessState.Read(launched.Pid) is not { State: not ('Z' or 'X') }, "sampler death");
        long flushed = SpoolRecords(dir);

        var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
        Assert.Equal(JobStatus.Partial, stop.Status);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("102"));
        Assert.Equal(JobStatus.Partial, row.Status);
        Assert.Contains("died", row.Reason);
        Assert.Equal(3.0, row.Energy.PackageJ, 12);

        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM read_parquet('{row.ParquetPath}')";
        Assert.Equal(flushed, Convert.ToInt64(cmd.ExecuteScalar()));

        // Finalizing again (a second epilog) changes nothing.
        Assert.Equal("already", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
        Assert.Single(db.GetJob("102"));
    }

    [Fact]
    public void ConfiguredExclusiveAttributionChargesTheWholeNodeWithoutLookingForACgroup()
    {
        // A Slurm job with no cgroup anywhere: only [sampler] attribution = "exclusive" gives it the energy.
        using var install = new TestInstallation(PowercapTree.Standard(2, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\ncgroup_wait_s = 1");
        var job = new JobIdentity("slurm", "test", "105", "root", 0, "node1");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null), install.Config, TestInstallation.Binary());
        Assert.True(launched.Ok, launched.Message);
        string dir = job.StateDirectory(install.Config.Paths.StateDir);
        WaitFor(() => SpoolRecords(dir) > 0, "the first flushed records (counters primed)");
        install.Powercap.SetEnergy("intel-rapl:1", 1_500_000);
        Thread.Sleep(1500); // longer than cgroup_wait_s: in cgroup mode the sampler would have given up
        Assert.Equal("stopped", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("105"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(1.5, row.Energy.PackageJ, 12);
        Assert.Equal("exclusive", row.AttributionMode);
    }

    /// <summary>
    /// A prolog that comes while the node sampler that lingered out is still exporting its closed day (seconds at the
    /// default storage, minutes at raw; here its export waits for the day's lock, as behind a pruner or another export of
    /// the day) starts the next sampler, and its job is measured: the closing sampler gives up the node lock once its
    /// spools are closed, not after the export. Both exports of the day then leave its node file holding all of it.
    /// </summary>
    [Fact]
    public void AJobWhosePrologComesWhileTheLastSamplerExportsItsDayIsMeasured()
    {
        using var install = NewInstall();
        var first = Job("130");
        var launched = Start(install, first);
        install.Powercap.SetEnergy("intel-rapl:0", 1_000_000);
        var second = Job("131");
        LaunchResult next;
        string day;
        using (StopWhileItsDayIsHeld(install, first, out day))
        {
            next = SamplerLauncher.Start(new SamplerLaunch(second, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
            Assert.True(next.Ok, next.Message);
            Assert.NotEqual(launched.Pid, next.Pid);
            Assert.True(ExportOf(day) is not null && Alive(launched.Pid), "the first sampler was still exporting its day");
            string dir = second.StateDirectory(install.Config.Paths.StateDir);
            WaitFor(() => SpoolRecords(dir) > 0, "the first flushed records (counters primed)");
            install.Powercap.SetEnergy("intel-rapl:0", 4_000_000);
            WaitFor(() => FlushedJobEnergy(dir, "131", "cpu_package", "0") == 3_000_000, "the 3 J in the spool");
            var stop = SamplerLauncher.StopAndFinalize(second, install.Config);
            Assert.True(stop.Status == "stopped", stop.Message);
        }
        WaitFor(() => !Alive(launched.Pid) && !Alive(next.Pid), "both samplers' exit after their exports of the day", 60);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("131"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(3.0, row.Energy.PackageJ, 12);
        Assert.Equal(NodeSpool.ParquetPath(install.Config, "test", "node1", Path.GetFileName(day)), NodeSpool.ExportedTo(day));
    }

    /// <summary>
    /// Takes the lock of the node's one day, then ends <paramref name="job"/>, the sampler's last: the exiting sampler's
    /// export of its day (a finalize-job child) waits for the lock, which the caller holds until it disposes it.
    /// </summary>
    private static FinalizationLock StopWhileItsDayIsHeld(TestInstallation install, JobIdentity job, out string day)
    {
        string held = day = Assert.Single(Directory.GetDirectories(NodeSpool.Root(install.Config)), d => NodeSpool.IsDay(Path.GetFileName(d), out _));
        var dayLock = FinalizationLock.Acquire(held, TimeSpan.Zero, out _);
        Assert.NotNull(dayLock);
        var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
        Assert.True(stop.Status == "stopped", stop.Message);
        WaitFor(() => ExportOf(held) is not null, "the exiting sampler's export of its day (waiting for the day's lock)");
        return dayLock;
    }

    private static bool Alive(int pid) => ProcessState.Read(pid) is { State: not ('Z' or 'X') };

    /// <summary>The finalize-job child that exports the day (alumet-hpc finalize-job ... --node-day DAY), or null.</summary>
    private static string? ExportOf(string day) => Directory.EnumerateDirectories("/proc").Select(d =>
    {
        try { return File.ReadAllText(Path.Combine(d, "cmdline")).Split('\0'); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }).Where(argv => argv.Contains(FinalizerProcess.Command) && argv.SkipWhile(a => a != "--node-day").Skip(1).FirstOrDefault() == day)
      .Select(argv => string.Join(' ', argv)).FirstOrDefault();

    [Fact]
    public void ASamplerExportingItsDayAtExitHasClosedItsSourcesForTheNextOne()
    {
        // The exiting sampler lets the node lock go before its closed day's export (seconds, minutes at raw storage), and
        // the next sampler opens the sources again meanwhile: the old one must not hold them (a BMC may take one session).
        using var install = NewInstall();
        var job = Job("132");
        var launched = Start(install, job);
        string powercap = Path.GetFullPath(install.Powercap.Root);
        Assert.NotEmpty(OpenUnder(launched.Pid, powercap)); // sampling: the counters are open
        using (StopWhileItsDayIsHeld(install, job, out _))
        {
            Assert.True(Alive(launched.Pid), "the sampler still waits for its day's export");
            var open = OpenUnder(launched.Pid, powercap);
            Assert.True(open.Count == 0, $"still open while the day's export waits: {string.Join(", ", open)}");
        }
        WaitFor(() => !Alive(launched.Pid), "the sampler's exit after its export", 60);

        // The process's open descriptors whose target is under dir.
        static List<string> OpenUnder(int pid, string dir) => Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Select(fd =>
        {
            try { return new FileInfo(fd).LinkTarget ?? ""; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
        }).Where(t => t.StartsWith(dir + "/", StringComparison.Ordinal)).ToList();
    }

    [Fact]
    public void EpilogWithoutPrologRecordsNotMeasured()
    {
        using var install = NewInstall();
        var stop = SamplerLauncher.StopAndFinalize(Job("103"), install.Config);
        Assert.Equal("not_measured", stop.Status);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("103"));
        Assert.Equal(JobStatus.NotMeasured, row.Status);
        Assert.Contains("prolog did not register", row.Reason);
    }

    [Fact]
    public void SecondPrologForTheSameJobDoesNotStartASecondSampler()
    {
        using var install = NewInstall();
        var job = Job("104");
        var first = Start(install, job);
        var second = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, true), install.Config, TestInstallation.Binary());
        Assert.True(second.Ok);
        Assert.Equal(first.Pid, second.Pid);
        Assert.Equal("stopped", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
    }

    [Fact]
    public void PrologsStartingTogetherStartOneNodeSampler()
    {
        // Jobs starting at once: every prolog finds no sampler. One starts it, the others wait for it (no process
        // spawned only to find the node lock taken).
        using var install = NewInstall();
        var jobs = Enumerable.Range(0, 6).Select(i => Job($"{110 + i}")).ToList();
        var results = new LaunchResult[jobs.Count];
        using var together = new Barrier(jobs.Count);
        var threads = Enumerable.Range(0, jobs.Count).Select(i => new Thread(() =>
        {
            together.SignalAndWait();
            results[i] = SamplerLauncher.Start(new SamplerLaunch(jobs[i], install.ConfigPath, [], null, true), install.Config, TestInstallation.Binary());
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.All(results, r => Assert.True(r.Ok, r.Message));
        Assert.Single(results.Select(r => r.Pid).Distinct());
        Assert.Single(results, r => r.Message.Contains("(started)"));
        // Every process of this binary with this config: the sampler only (a spawned loser would wait for the lock).
        var samplers = Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)).Where(d =>
        {
            try { return File.ReadAllText(Path.Combine(d, "cmdline")).Split('\0').Contains(install.ConfigPath); }
            catch (IOException) { return false; }
            catch (UnauthorizedAccessException) { return false; }
        }).ToList();
        Assert.Single(samplers);
        foreach (var job in jobs) Assert.Equal("stopped", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
        var log = File.ReadAllLines(install.PathOf("alumet-hpc.log"));
        Assert.Single(log, l => l.Contains("node sampler: pid "));
        Assert.DoesNotContain(log, l => l.Contains("another one holds the node lock"));
    }

    /// <summary>
    /// The sampler a prolog started may take more than a second to hold the node lock and write its pid file (a loaded
    /// node, or an exiting sampler's lock; here the test holds the lock until 1.5 s after the sampler's spawn). The prolog
    /// waits for that one: it took a missing pid file after 1 s for the sampler's death and started another every few ms
    /// until one answered, each waiting 5 s for the lock.
    /// </summary>
    /// <summary>
    /// With procfs_root at a tree that does not list the node sampler (a generated procfs: the labs'), the sampler cannot
    /// read its own start time there and writes no pid file; the prolog's line then names no pid. It said "node sampler
    /// pid 0 (started)".
    /// </summary>
    [Fact]
    public void APrologWhoseSamplerWroteNoPidFileNamesNoPid()
    {
        using var proc = new ProcTree();
        using var install = new TestInstallation(PowercapTree.Standard(2, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20\nlinger_s = 0",
            pathsToml: $"procfs_root = \"{proc.Root}\"");
        var job = Job("142");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary());
        Assert.True(launched.Ok, launched.Message);
        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(launched.Message, @"^job 142 registered \(1 job\(s\) on the node\); node sampler \(started\) in [0-9]+ ms$"),
            launched.Message);
        Assert.Equal(0, launched.Pid);
        Assert.False(File.Exists(Path.Combine(NodeSpool.Root(install.Config), SamplerFiles.Pid)));
        Assert.Single(install.Processes()); // it runs: only its pid is not known to the prolog
        Assert.Equal("stopped", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
    }

    [Fact]
    public void APrologStartsNoOtherSamplerWhileTheOneItStartedWaitsForTheNodeLock()
    {
        using var install = NewInstall();
        string root = NodeSpool.Root(install.Config);
        Directory.CreateDirectory(root);
        var job = Job("141");
        Task<LaunchResult> prolog;
        using (new FileStream(Path.Combine(root, NodeSamplerHost.LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            prolog = Task.Run(() => SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, TestInstallation.Binary()));
            WaitFor(() => install.Processes().Any(), "the sampler the prolog started");
            Thread.Sleep(1500);
        }
        var launched = prolog.Result;
        Assert.True(launched.Ok, launched.Message);
        Assert.Contains($"; node sampler pid {launched.Pid} (started) in ", launched.Message);
        Assert.Equal(new[] { launched.Pid }, install.Processes());
        Assert.Equal("stopped", SamplerLauncher.StopAndFinalize(job, install.Config).Status);
    }

    [Fact]
    public void PrologsStartTheLeanSamplerBinaryAndItsEndedJobsAreFinalizedInAChild()
    {
        // The daemon is alumet-hpc-sampler (beside alumet-hpc); the Parquet writer and SQLite never load into it: the
        // job's Parquet file and row come from an `alumet-hpc finalize-job` child (README, The node sampler).
        using var install = new TestInstallation(PowercapTree.Standard(2, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20\nlinger_s = 30");
        var job = Job("120");
        var launched = Start(install, job);
        try
        {
            Assert.EndsWith("/" + SamplerLauncher.SamplerProgram, new FileInfo($"/proc/{launched.Pid}/exe").LinkTarget);
            install.Powercap.SetEnergy("intel-rapl:0", 1_250_000);
            WaitFor(() => FlushedJobEnergy(job.StateDirectory(install.Config.Paths.StateDir), "120", "cpu_package", "0") == 1_250_000, "the 1.25 J in the spool");
            var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
            Assert.True(stop.Status == "stopped", stop.Message);
            using (var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database))
            {
                var row = Assert.Single(db.GetJob("120"));
                Assert.Equal(JobStatus.Complete, row.Status);
                Assert.Equal(1.25, row.Energy.PackageJ, 12);
                Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
            }
            string maps = File.ReadAllText($"/proc/{launched.Pid}/maps");
            Assert.DoesNotContain("libe_sqlite3", maps);
            // One line for the row, written by the child into the same log.
            Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.Contains("job 120: finalized complete"));
        }
        finally { Alumet.Hpc.Native.Libc.kill(launched.Pid, 15); }
    }

    [Theory]
    [InlineData(true)]  // alumet-hpc-sampler node-sampler, what the prologs start
    [InlineData(false)] // alumet-hpc node-sampler (the systemd unit)
    public void InTheForegroundTheEndedJobsOutcomeIsOnStderrOnceAsItIsInTheLog(bool lean)
    {
        // An admin runs the node sampler in the foreground (no --detach) to watch it: its log comes to stderr, and so
        // must its finalize-job children's lines (the job's outcome), as a foreground sample's do.
        using var install = new TestInstallation(PowercapTree.Standard(2, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20\nlinger_s = 600");
        string program = lean
            ? Path.Combine(Path.GetDirectoryName(TestInstallation.Binary())!, SamplerLauncher.SamplerProgram)
            : TestInstallation.Binary();
        using var sampler = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(program, ["node-sampler", "--config", install.ConfigPath])
            { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false })!;
        var stderr = sampler.StandardError.ReadToEndAsync();
        var stdout = sampler.StandardOutput.ReadToEndAsync();
        var job = Job("121");
        try
        {
            WaitFor(() => File.Exists(NodeSocket.PathFor(install.Config.Paths.StateDir)), "the node sampler's socket");
            Assert.Equal(sampler.Id, Start(install, job).Pid); // registered with it, no other sampler started
            install.Powercap.SetEnergy("intel-rapl:0", 1_250_000);
            WaitFor(() => FlushedJobEnergy(job.StateDirectory(install.Config.Paths.StateDir), "121", "cpu_package", "0") == 1_250_000, "the 1.25 J in the spool");
            var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
            Assert.True(stop.Status == "stopped", stop.Message);
        }
        finally
        {
            Alumet.Hpc.Native.Libc.kill(sampler.Id, 15);
            if (!sampler.WaitForExit(60_000)) sampler.Kill();
        }

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("121"));
        string outcome = $"job 121: finalized complete, 1.25 J, {row.ParquetPath}; row stored in {install.Config.Paths.Database}";
        Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.EndsWith("] info: " + outcome, StringComparison.Ordinal));
        Assert.Single(stderr.Result.Split('\n'), l => l.Contains("job 121: finalized"));
        Assert.Contains("alumet-hpc: info: " + outcome + "\n", stderr.Result);
        Assert.Equal((0, ""), (sampler.ExitCode, stdout.Result));
    }

    [Fact]
    public void TheDetachedSamplerDoesNotKeepWhatTheHooksParentLeftOpen()
    {
        // slurmd, OAR or a shell can run the hook with descriptors open without close-on-exec (here a file this test
        // holds, like a flock'ed lock file). The node sampler outlives the hook: it must not hold them. The hook's own
        // process keeps them as they were, for exec's user command, which must inherit them.
        using var install = NewInstall();
        string held = install.PathOf("held-by-the-parent");
        int fd = Alumet.Hpc.Native.Libc.open_mode(held, Alumet.Hpc.Native.Libc.O_RDWR | Alumet.Hpc.Native.Libc.O_CREAT, 0b110_000_000);
        Assert.True(fd > 2, "open failed");
        var job = Job("122");
        LaunchResult? launched = null;
        try
        {
            launched = Start(install, job);
            var kept = Directory.EnumerateFileSystemEntries($"/proc/{launched.Pid}/fd")
                .Select(e => new FileInfo(e).LinkTarget).Where(t => t == held).ToList();
            Assert.Empty(kept);
            Assert.Equal(0, Alumet.Hpc.Native.Libc.fcntl(fd, Alumet.Hpc.Native.Libc.F_GETFD, 0) & Alumet.Hpc.Native.Libc.FD_CLOEXEC);
            var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
            Assert.True(stop.Status == "stopped", stop.Message);
        }
        finally
        {
            Alumet.Hpc.Native.Libc.close(fd);
            if (launched is not null) Alumet.Hpc.Native.Libc.kill(launched.Pid, 15);
        }
    }

    [Fact]
    public void WithoutTheFullBinaryBesideItTheSamplerSaysWhyOnceAndTheEpilogFinalizesFromTheSpool()
    {
        // Only alumet-hpc-sampler installed: the sampler cannot start its finalizer; the epilog gets the error, finalizes
        // the job itself (partial, with the reason) and the log says why once.
        string sampler = Path.Combine(Path.GetDirectoryName(TestInstallation.Binary())!, SamplerLauncher.SamplerProgram);
        Assert.True(File.Exists(sampler), $"{sampler} missing: run make publish");
        using var install = new TestInstallation(PowercapTree.Standard(2, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20\nlinger_s = 0");
        string bin = install.PathOf("bin");
        Directory.CreateDirectory(bin);
        Executables.Copy(sampler, Path.Combine(bin, SamplerLauncher.SamplerProgram));
        var job = Job("121");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, Path.Combine(bin, "alumet-hpc"));
        Assert.True(launched.Ok, launched.Message);
        WaitFor(() => SpoolRecords(job.StateDirectory(install.Config.Paths.StateDir)) > 0, "the first flushed records");
        var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
        Assert.Equal(JobStatus.Partial, stop.Status);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("121"));
        Assert.Contains("could not finalize", row.Reason);
        var failed = Assert.Single(File.ReadAllLines(install.PathOf("alumet-hpc.log")), l => l.Contains("job 121: finalization failed"));
        Assert.Contains(Path.Combine(bin, "alumet-hpc"), failed);
    }

    [Fact]
    public void WhereOnlyAlumetHpcIsInstalledThePrologsStartItsOwnNodeSampler()
    {
        using var install = new TestInstallation(PowercapTree.Standard(2, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nstop_timeout_s = 20\nlinger_s = 30");
        string bin = install.PathOf("bin");
        Directory.CreateDirectory(bin);
        string from = Path.GetDirectoryName(TestInstallation.Binary())!;
        Executables.Copy(Path.Combine(from, "alumet-hpc"), Path.Combine(bin, "alumet-hpc"));
        File.Copy(Path.Combine(from, "libe_sqlite3.so"), Path.Combine(bin, "libe_sqlite3.so")); // loaded (mmap), never run: no ETXTBSY
        Assert.Equal(Path.Combine(bin, "alumet-hpc"), SamplerLauncher.DaemonExecutable(Path.Combine(bin, "alumet-hpc")));
        var job = Job("122");
        var launched = SamplerLauncher.Start(new SamplerLaunch(job, install.ConfigPath, [], null, Exclusive: true), install.Config, Path.Combine(bin, "alumet-hpc"));
        Assert.True(launched.Ok, launched.Message);
        try
        {
            Assert.Equal(Path.Combine(bin, "alumet-hpc"), new FileInfo($"/proc/{launched.Pid}/exe").LinkTarget);
            WaitFor(() => SpoolRecords(job.StateDirectory(install.Config.Paths.StateDir)) > 0, "the first flushed records");
            var stop = SamplerLauncher.StopAndFinalize(job, install.Config);
            Assert.True(stop.Status == "stopped", stop.Message);
            using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
            Assert.Equal(JobStatus.Complete, Assert.Single(db.GetJob("122")).Status);
        }
        finally { Alumet.Hpc.Native.Libc.kill(launched.Pid, 15); }
    }
}
