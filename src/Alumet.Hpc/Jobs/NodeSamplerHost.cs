using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// Runs a <see cref="NodeSampler"/>: as the node's daemon (at most one per node: an exclusive lock in
/// <c>&lt;state_dir&gt;/node</c>; started detached by the first prolog that finds none; serves the socket; recovers the
/// jobs a previous sampler left registered; exits by itself <c>linger_s</c> after its last job), or in-process for
/// one job (<c>sample</c>, <c>exec</c>).
/// </summary>
public static class NodeSamplerHost
{
    public const string LockFile = "sampler.lock";

    /// <summary>How long a starting daemon waits for the lock (a previous one may be closing after its linger).</summary>
    public static TimeSpan LockWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The daemon's entry point, in both binaries: <c>alumet-hpc-sampler node-sampler</c> (what the prologs start: the
    /// daemon alone, so that trimming leaves out the rest) and <c>alumet-hpc node-sampler</c> (systemd unit, older hooks).
    /// Ended jobs are finalized by <c>alumet-hpc finalize-job</c> children from the same directory.
    /// </summary>
    public static int Main(string? configPath, bool detach)
    {
        if (Commands.CommonOptions.LoadSystem(configPath) is not { } cfg) return 2;
        if (RootOnly.RefuseStateDir($"{Path.GetFileName(Environment.ProcessPath)}: node-sampler", cfg.Paths.StateDir, NodeSpool.Directory,
                "the node sampler must run as root, as the prologs start it (sudo)"))
            return RootOnly.ExitCode;
        Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: detach, stderr: !detach);
        // In the foreground (an admin watching it) the finalize-job children's log lines, each job's outcome, come to this
        // stderr too, as a foreground sample's do; detached, to syslog and the log file only.
        try { return RunDaemon(cfg, detach, FinalizerProcess.BesideThisBinary(configPath, logToStderr: !detach)); }
        catch (Exception e) when (e is MissingHardwareException or IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
        {
            Log.Error($"node sampler failed: {e.Message}");
            return 1;
        }
    }

    /// <summary>The daemon. Returns when the linger is over or on SIGTERM (jobs then stay registered for the next sampler).</summary>
    public static int RunDaemon(AlumetConfig cfg, bool detach, IJobFinalization finalization)
    {
        // Origin of status's first_sample_ms: the bench's spawn of the prolog that started us, else our start.
        long origin = OneJobSampler.BenchSpawnNs() ?? Clock.MonotonicNs();
        if (detach) SamplerProcessSetup.Detach(cfg.Paths.CgroupRoot);
        string root = NodeSpool.Root(cfg);
        Directory.CreateDirectory(cfg.Paths.StateDir);
        Directory.CreateDirectory(root);
        File.SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        using var nodeLock = TryLock(Path.Combine(root, LockFile), LockWait);
        if (nodeLock is null)
        {
            Log.Info("node sampler: another one holds the node lock; exiting");
            return 0;
        }
        SamplerPid.Self(cfg.Paths.ProcfsRoot)?.Write(root);

        using var sources = SourceFactory.Create(cfg);
        foreach (string p in sources.Problems) Log.Info($"node sampler: {p}");
        if (sources.Empty)
        {
            Log.Error($"node sampler: no energy source on this node ({string.Join("; ", sources.Problems)}); jobs are not measured");
            return 1;
        }
        FinalizedElsewhere.Reset(root); // under the node lock, before the recovery reads the markers
        using var node = new NodeSampler(cfg, sources, Clock.MonotonicNs(), finalization) { OriginNs = origin, CompactAfterJobChanges = true, RetryDayExports = true };
        var sampler = new Sampler(node.Buffer, node);
        node.Recover(Clock.MonotonicNs());

        // What the start-up left behind (config, sources, recovery) is garbage: collected and given back to the system
        // before the jobs' work begins, so it does not add to the daemon's peak (README Performance, peak RSS).
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        using var cts = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        using (var server = new NodeSocket.Server(NodeSocket.PathFor(cfg.Paths.StateDir), line => Handle(node, sampler, line)))
        {
            Log.Info($"node sampler: pid {Environment.ProcessId}, listening on {server.Path} ({sources.Perimeter})");
            sampler.Run(cts.Token, sources.StartCrossCheck);
            node.Stop();
        }
        node.Close(Clock.MonotonicNs(), Clock.WallNs(), closed: () =>
        {
            // Nothing of this sampler is open any more (socket, jobs' and day's spools): the node lock goes now, not after the
            // closed day's export (seconds, minutes at raw storage), so that a prolog meanwhile starts the next sampler and
            // its job is measured. The export holds the day's own lock (no pruning under it); a sampler that reopens the
            // day appends after the records the export counted (NodeSpool.Export). The sources close first: the next
            // sampler opens them again (a BMC may take one session at a time; perf and MSR descriptors, NVML).
            sources.Dispose();
            File.Delete(Path.Combine(root, SamplerFiles.Pid));
            nodeLock.Dispose();
        });
        Log.Info($"node sampler: exiting ({(cts.IsCancellationRequested ? "signal" : $"no job for {cfg.Sampler.LingerS} s")})");
        return 0;
    }

    private static string? _lastRefused;

    /// <summary>One request line from the socket → the answer ("ok ..." or "error ...", then lines).</summary>
    internal static string Handle(NodeSampler node, Sampler sampler, string line)
    {
        int sp = line.IndexOf(' ');
        string verb = sp < 0 ? line : line[..sp];
        string rest = sp < 0 ? "" : line[(sp + 1)..];
        try
        {
            switch (verb)
            {
                case "ping":
                    return "ok\n";
                case "register":
                {
                    var reg = JobRegistration.Parse(rest, out string? error);
                    if (reg is null) return $"error {error}\n";
                    string msg;
                    try { msg = node.Register(reg, recovered: false, Clock.MonotonicNs(), Clock.WallNs()); }
                    catch (NodeSampler.RegistrationRefused refused)
                    {
                        // A prolog retries its request: its copies read after a stall are said once.
                        string key = $"{reg.Key} {reg.ApplyByWallNs} {reg.StartWallNs}";
                        if (Interlocked.Exchange(ref _lastRefused, key) != key) Log.Warn($"node sampler: {refused.Message}");
                        return $"error {refused.Message}\n";
                    }
                    // The tick loop was told by the registration itself (NodeSampler.Rebuild): once, not twice.
                    return $"ok {msg}\n";
                }
                case "end":
                {
                    var kv = JobRegistration.Tokens(rest);
                    string key = JobRegistration.KeyOf(kv.GetValueOrDefault("scheduler", ""), kv.GetValueOrDefault("job", ""));
                    // The run its epilog ends, when it knows it (SamplerLauncher.StopAndFinalize); a sampler of an earlier
                    // version ignores the key and ends the registered run, as every end did before.
                    string? run = kv.GetValueOrDefault("run");
                    if (run is not null && !RunId.IsValid(run)) return $"error run {Schedulers.SchedulerInput.Quote(run)} is not a run id\n";
                    JobFinalizer.Outcome? outcome;
                    try { outcome = node.End(key, complete: kv.GetValueOrDefault("complete", "1") == "1", "", Clock.MonotonicNs(), Clock.WallNs(), run); }
                    catch (NodeSampler.OtherRunRegistered other) { return $"error {other.Message}\n"; }
                    return outcome is null
                        ? $"error job {key} is not registered\n"
                        : $"ok {outcome.Status}{(outcome.Reason.Length > 0 ? ": " + outcome.Reason : "")}{(outcome.Stored ? "" : $" [{outcome.Delivery}]")}\n";
                }
                case "status":
                    return "ok\n" + node.Status(sampler);
                case "jobs":
                    return "ok\n" + node.Jobs();
                case "pause":
                    node.Pause(Clock.MonotonicNs(), Clock.WallNs());
                    sampler.RateChanged();
                    return "ok paused: the period closed here, then no reads and no rows until resume; the first period after it carries the energy of the pause\n";
                case "resume":
                    node.Resume();
                    sampler.RateChanged();
                    return "ok sampling\n";
                case "set":
                {
                    int eq = rest.IndexOf('=');
                    if (eq <= 0) return "error use set KEY=VALUE\n";
                    string? err = node.Set(rest[..eq].Trim(), rest[(eq + 1)..].Trim()); // tells the tick loop when applied
                    return err is null ? $"ok {rest.Trim()} applied\n" : $"error {err}\n";
                }
                default:
                    return $"error unknown request {Schedulers.SchedulerInput.Quote(verb)}: use register, end, status, jobs, pause, resume, set KEY=VALUE\n";
            }
        }
        catch (Exception e)
        {
            // Any failure is the request's answer: an exception escaping a socket thread would end the sampler, and with
            // it the measurement of every other job on the node.
            return $"error {ErrorText.Describe(e)}\n";
        }
    }

    /// <summary>
    /// One job in this process (<c>sample</c>, <c>exec</c>): reads every counter (the job's baseline), registers it,
    /// samples until <paramref name="token"/> is cancelled, ends and finalizes it. With <paramref name="spawnNs"/> (the
    /// bench's spawn) it writes the timing figures to <c>stats.json</c>.
    /// </summary>
    /// <param name="finalization">In this process (<c>exec</c> as a user), or an <c>alumet-hpc finalize-job</c> child
    /// (<c>sample</c> in <c>alumet-hpc-sampler</c>: <see cref="OneJobSampler"/>).</param>
    /// <param name="primed">Runs right after the baseline read (the caller's start-up log lines: off the path to it).</param>
    /// <param name="finalizationFailed">A finalization of the job failed (said once in the log, its spool kept): no row, no file.</param>
    public static JobFinalizer.Outcome? RunOneJob(AlumetConfig cfg, SourceSet sources, JobRegistration reg, IJobFinalization finalization, CancellationToken token,
                                                  out bool finalizationFailed, long? spawnNs = null, Action? primed = null)
    {
        long start = Clock.MonotonicNs();
        using var node = new NodeSampler(cfg, sources, start, finalization) { StopWhenEmpty = true };
        var cpuAtBaseline = spawnNs is null ? TimeSpan.Zero : Environment.CpuUsage.TotalTime; // stats.json: CPU to the first sample
        primed?.Invoke();
        node.Register(reg, recovered: false, start, Clock.WallNs());
        var sampler = new Sampler(node.Buffer, node);
        sampler.Run(token, sources.StartCrossCheck);
        string dir = reg.Job.StateDirectory(cfg.Paths.StateDir);
        WriteStats(dir, node, sampler, start, spawnNs, cpuAtBaseline, node.RecordsWritten(reg.Key));
        JobFinalizer.Outcome? outcome = null;
        bool endFailed = false;
        try { outcome = node.End(reg.Key, complete: true, "", Clock.MonotonicNs(), Clock.WallNs()); }
        catch (Exception e)
        {
            endFailed = true;
            // A failed finalization is logged by the node sampler itself; only a failure before it is said here.
            if (node.FinalizationFailures == 0) Log.Error($"job {reg.Job.JobId}: finalization failed: {ErrorText.Describe(e)}; spool kept in {dir}");
        }
        finalizationFailed = endFailed || node.FinalizationFailures > 0;
        node.Stop();
        node.Close(Clock.MonotonicNs(), Clock.WallNs());
        node.WaitForOutboxRetry(); // a queued row: retried here, after the job, as the node sampler does
        return outcome;
    }

    private static void WriteStats(string dir, NodeSampler node, Sampler s, long start, long? spawnNs, TimeSpan cpuAtBaseline, long records)
    {
        double duration = (Clock.MonotonicNs() - start) / 1e9;
        var stats = new SamplerStats(node.TickHz, s.Ticks, s.MissedTicks, duration, duration > 0 ? s.Ticks / duration : 0,
            s.Lateness.PercentileUs(50), s.Lateness.PercentileUs(99), s.Lateness.MaxNs / 1000.0,
            s.Lateness.Count > 0 ? s.Lateness.SumNs / s.Lateness.Count / 1000.0 : 0,
            spawnNs is { } t0 ? (node.PrimedNs - t0) / 1e6 : -1,
            spawnNs is { } t1 && s.FirstSampleNs > 0 ? (s.FirstSampleNs - t1) / 1e6 : -1,
            spawnNs is null ? -1 : cpuAtBaseline.TotalMilliseconds,
            records);
        try { File.WriteAllText(Path.Combine(dir, "stats.json"), JsonSerializer.Serialize(stats, SamplerStatsJsonContext.Default.SamplerStats)); }
        catch (IOException e) { Log.Warn($"could not write stats.json: {e.Message}"); }
    }

    /// <summary>The node lock: an exclusive open (flock) held for the daemon's life; null when another process holds it.</summary>
    internal static FileStream? TryLock(string path, TimeSpan wait)
    {
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(20); }
            catch (IOException) { return null; }
        }
    }

    /// <summary>
    /// Whether a node sampler holds the node lock (starting, sampling or closing), probed without waiting. Free is said
    /// only when it is free twice, 250 ms apart: a sampler started a moment ago (by a prolog, or the unit) takes it within
    /// that (<see cref="TryLock"/> tries every 20 ms).
    /// </summary>
    internal static bool LockHeld(AlumetConfig cfg)
    {
        string path = Path.Combine(NodeSpool.Root(cfg), LockFile);
        if (Held(path)) return true;
        Thread.Sleep(250);
        return Held(path);

        static bool Held(string path)
        {
            // The probe takes the lock for an instant (an exclusive open, as the daemon's): a daemon trying then retries.
            try { using var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None); return false; }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException) { return false; }
            catch (IOException) { return true; }
        }
    }

    internal static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + " ms";
}
