using System.Diagnostics;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Jobs;

/// <summary>What a prolog asks for: the job, the config file to pass on, its GPUs (<see cref="Sources.Nvml.GpuAllocation"/>
/// entries), Slurm's SLUID, raw storage.</summary>
public sealed record SamplerLaunch(JobIdentity Job, string? ConfigPath, IReadOnlyList<string> Gpus, string? Sluid, bool Exclusive = false, bool Raw = false)
{
    /// <summary><c>exec</c>'s own registration fields: <see cref="JobRegistration.Cgroup"/>, <see cref="JobRegistration.Owner"/>,
    /// <see cref="JobRegistration.ExclusiveWhenAlone"/>.</summary>
    public string? Cgroup { get; init; }
    public SamplerPid? Owner { get; init; }
    public bool ExclusiveWhenAlone { get; init; }
}

public sealed record LaunchResult(bool Ok, int Pid, string Message);

public sealed record StopResult(string Status, string Message);

/// <summary>
/// The hooks' side of the node sampler: register a job (starting the node sampler when none runs), end a job.
/// Both never throw and return within their bound: a hook that fails or hangs drains a Slurm node or suspects an
/// OAR node.
/// </summary>
public static class SamplerLauncher
{
    /// <summary>How long a prolog waits for a node sampler it started to answer.</summary>
    public static TimeSpan DetachWait { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>In <c>&lt;state_dir&gt;/node</c>: held by the prolog that starts the node sampler.</summary>
    public const string StartGateFile = "start.lock";

    /// <summary>
    /// Registers the job with the node sampler, starting it first (<c>alumet-hpc node-sampler --detach</c>, argv
    /// array, never a shell) when none answers. Returns once the sampler has acknowledged the registration.
    /// </summary>
    public static LaunchResult Start(SamplerLaunch launch, AlumetConfig config, string? executable = null)
    {
        var job = launch.Job;
        var sw = Stopwatch.StartNew();
        // One bound for the whole call (a hook's: Slurm drains a node whose Prolog outlives PrologEpilogTimeout): every
        // wait below is capped by what is left of it, and the registration carries the moment after which the sampler
        // must not apply it (a hung sampler that wakes later would otherwise measure a job its prolog gave up on).
        TimeSpan bound = DetachWait, grace = AnswerGrace(bound);
        TimeSpan Left() => bound - sw.Elapsed;
        TimeSpan Wait() => Left() < RequestTimeout ? Left() : RequestTimeout;
        try
        {
            var reg = Registration(launch);
            long applyFor = (long)(bound - grace).TotalNanoseconds; // from now: on the clock no step moves, and on the wall one for an older sampler
            reg = reg with { ApplyByBootNs = Clock.BootNs() + applyFor, ApplyByWallNs = reg.StartWallNs + applyFor };
            string request = "register " + reg.ToLine();
            string? answer = NodeSocket.Request(config.Paths.StateDir, request, Wait(), out string? error);
            bool started = false;
            FileStream? gate = null; // held from the first start until this prolog is registered
            Process? daemon = null;  // the one this call started: its exit status and first words say why it is not there
            try
            {
                while (answer is null || answer.StartsWith("error the node sampler is stopping", StringComparison.Ordinal))
                {
                    if (answer is null && ExitedAtStart(daemon, config.Paths.LogFile) is { } died)
                        return new LaunchResult(false, 0, $"job {job.JobId} not registered: the node sampler it started {died}");
                    // Past bound - grace the sampler refuses the registration anyway: no new request. One it applied
                    // before and answers too late is withdrawn (Withdraw).
                    if (Left() <= grace)
                        return new LaunchResult(false, 0, GaveUp(job, config, bound, error ?? answer?.Trim()) + Withdraw(reg, config));
                    if (!started && answer is null)
                    {
                        // Prologs that find no sampler at the same moment (jobs starting together) start ONE: the others
                        // wait here for the gate, then find it answering.
                        if (gate is null)
                        {
                            string root = Spool.NodeSpool.Root(config);
                            Directory.CreateDirectory(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                            gate = NodeSamplerHost.TryLock(Path.Combine(root, StartGateFile), Left() - grace);
                            if (Left() <= grace) continue;
                            answer = NodeSocket.Request(config.Paths.StateDir, request, Wait(), out error);
                            if (answer is not null) continue;
                            if (Left() <= grace) continue;
                        }
                        daemon?.Dispose();
                        daemon = StartDaemon(launch.ConfigPath, executable);
                        started = true;
                    }
                    Thread.Sleep(answer is null ? 5 : 50);
                    answer = NodeSocket.Request(config.Paths.StateDir, request, Wait(), out error);
                    // Another is started only once the one started here has exited (status 0: another process held the
                    // node lock past its wait) and no live sampler is recorded. A sampler writes its pid file only once it
                    // holds the node lock, so a missing one says nothing of a sampler still on its way to it.
                    if (answer is null && daemon is { HasExited: true } && !DaemonMayStillStart(config)) started = false;
                }
                // No pid file where the sampler could not read its own start time under procfs_root (one that does not
                // list it): its pid is not known here, and the line names none.
                int pid = SamplerPid.Read(Spool.NodeSpool.Root(config)) is { } p ? p.Pid : 0;
                if (!answer.StartsWith("ok", StringComparison.Ordinal))
                    return new LaunchResult(false, pid, $"job {job.JobId}: node sampler refused the registration: {answer.Trim()}");
                return new LaunchResult(true, pid,
                    $"{answer[2..].Trim()}; node sampler{(pid > 0 ? $" pid {pid}" : "")}{(started ? " (started)" : "")} in {sw.Elapsed.TotalMilliseconds:0} ms");
            }
            finally
            {
                gate?.Dispose();
                daemon?.Dispose();
            }
        }
        catch (Exception e)
        {
            return new LaunchResult(false, 0, $"could not register job {job.JobId} with the node sampler: {ErrorText.Describe(e)}");
        }
    }

    /// <summary>The longest one socket request of <see cref="Start"/> waits (less when less of its bound is left).</summary>
    public static TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The end of <see cref="Start"/>'s bound kept for the sampler's answer: it applies a registration only
    /// up to bound − grace, so an answer it sends is read before the prolog gives up.</summary>
    private static TimeSpan AnswerGrace(TimeSpan bound) => bound / 8 < TimeSpan.FromSeconds(1) ? bound / 8 : TimeSpan.FromSeconds(1);

    private static string GaveUp(JobIdentity job, AlumetConfig config, TimeSpan bound, string? why)
    {
        string who = SamplerPid.Read(Spool.NodeSpool.Root(config)) is { } p && p.IsAlive(config.Paths.ProcfsRoot)
            ? $"the node sampler (pid {p.Pid}) is running but did not register it within the prolog's {bound.TotalSeconds:0.#} s (hung or stopped?)"
            : $"no node sampler registered it within the prolog's {bound.TotalSeconds:0.#} s";
        return $"job {job.JobId} not registered: {who}; last answer: {why ?? "none"}; the registration is withdrawn (a sampler that wakes later does not apply it); see {config.Paths.LogFile}";
    }

    /// <summary>
    /// A prolog that gives up leaves <see cref="JobFinalizer.WithdrawnPath"/> beside the job's state dir, then the signal a
    /// node sampler reads at its next wake (<see cref="FinalizedElsewhere"/>): one stalled after applying the registration
    /// and before its answer was read drops the job and its state, and the epilog records it not_measured, as the prolog
    /// said (s11 hooks.md 2a). Returns "" or what could not be done, for the prolog's line.
    /// </summary>
    private static string Withdraw(JobRegistration reg, AlumetConfig config)
    {
        string dir = reg.Job.StateDirectory(config.Paths.StateDir);
        try
        {
            string parent = Path.GetDirectoryName(dir)!;
            if (!Directory.Exists(parent)) Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            AtomicFile.WriteAllText(JobFinalizer.WithdrawnPath(dir), $"withdrawn: the registration of {Clock.FromWallNs(reg.StartWallNs):yyyy-MM-ddTHH:mm:ss.fff}Z\n");
            FinalizedElsewhere.Raise(Spool.NodeSpool.Root(config), reg.Key);
            return "";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $" (its withdrawal could not be written: {ErrorText.Describe(e)}; a sampler that applied it late measures the job)";
        }
    }

    /// <summary>
    /// Why the daemon this prolog started is gone, or null while it runs (or exited 0: another one held the node lock).
    /// Before it detaches its stderr is still our pipe, so a refusal at start (a config it cannot load) is read here;
    /// after that it logs to the log file.
    /// </summary>
    private static string? ExitedAtStart(Process? daemon, string logFile)
    {
        if (daemon is null || !daemon.HasExited || daemon.ExitCode == 0) return null;
        string said = "";
        try { said = ErrorText.LastLine(daemon.StandardError.ReadToEnd()); }
        catch (Exception e) when (e is IOException or InvalidOperationException) { }
        return said.Length > 0 ? $"exited at start: {said}" : $"exited at start with status {daemon.ExitCode}; its reason is in {logFile}";
    }

    /// <summary>What the prolog registers. It fixes the run id (the scheduler's: SLUID or job start; else now), so that a restarted sampler keeps it.</summary>
    public static JobRegistration Registration(SamplerLaunch launch)
    {
        var job = launch.Job;
        if (job.RunId.Length == 0) job = job with { RunId = RunId.Of(launch.Sluid, DateTime.UtcNow) };
        return new JobRegistration(job, launch.Gpus.Count > 0 ? string.Join(',', launch.Gpus) : null, launch.Sluid,
            launch.Exclusive, launch.Raw, Clock.WallNs())
        {
            Cgroup = launch.Cgroup, Owner = launch.Owner, ExclusiveWhenAlone = launch.ExclusiveWhenAlone,
        };
    }

    /// <summary>The socket refused the connection or is not there (<see cref="NodeSocket.Request"/>'s words).</summary>
    private static bool NothingListens(string? error) => error is not null && error.StartsWith("no node sampler", StringComparison.Ordinal);

    private static bool DaemonMayStillStart(AlumetConfig config) =>
        SamplerPid.Read(Spool.NodeSpool.Root(config)) is { } p && p.IsAlive(config.Paths.ProcfsRoot);

    /// <summary>The node sampler's own binary, installed beside <c>alumet-hpc</c> (out/bin): the daemon without the rest.</summary>
    public const string SamplerProgram = "alumet-hpc-sampler";

    /// <summary>
    /// What a prolog starts: <c>alumet-hpc-sampler</c> beside <paramref name="executable"/> (ours by default), or, where
    /// only <c>alumet-hpc</c> was installed, its own <c>node-sampler</c> (the same daemon, with the whole binary mapped).
    /// </summary>
    public static string DaemonExecutable(string? executable = null) => LeanSampler(executable) ?? OwnExecutable(executable);

    /// <summary><c>alumet-hpc-sampler</c> beside <paramref name="executable"/> (ours by default), or null where it was not installed.</summary>
    public static string? LeanSampler(string? executable = null)
    {
        string lean = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(OwnExecutable(executable))) ?? "/", SamplerProgram);
        return File.Exists(lean) ? lean : null;
    }

    private static string OwnExecutable(string? executable) =>
        executable ?? Environment.ProcessPath ?? throw new InvalidOperationException("cannot find our own executable");

    /// <summary>
    /// The config file a child that runs in "/" must be told: <paramref name="configPath"/>, else <c>$ALUMET_HPC_CONFIG</c>,
    /// as the absolute path it names from here; null for the default lookup (absolute paths already). An empty one is
    /// absent, as ConfigLoader.Load reads it.
    /// </summary>
    public static string? ConfigForChild(string? configPath)
    {
        string? config = configPath is { Length: > 0 } ? configPath
            : Environment.GetEnvironmentVariable(ConfigLoader.EnvVar) is { Length: > 0 } env ? env : null;
        return config is null ? null : Path.GetFullPath(config);
    }

    /// <summary>Starts a detached node sampler; it exits at once if another holds the node lock.</summary>
    private static Process StartDaemon(string? configPath, string? executable)
    {
        // The daemon runs in "/": a relative --config (or $ALUMET_HPC_CONFIG) of the caller is passed as the file it names here.
        string? config = ConfigForChild(configPath);
        var psi = new ProcessStartInfo(DaemonExecutable(executable))
        {
            UseShellExecute = false,
            // Our stdio may be the scheduler's pipe (OAR waits for it to close): the child gets fresh pipes that die
            // with us, and redirects to /dev/null as soon as it runs.
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        };
        psi.ArgumentList.Add("node-sampler");
        psi.ArgumentList.Add("--detach");
        if (config is not null)
        {
            psi.ArgumentList.Add("--config");
            psi.ArgumentList.Add(config);
        }
        Process process;
        // It lives on after the hook: it must not keep what slurmd, OAR or the user's shell left open in the hook.
        using (Native.InheritedDescriptors.Hide())
            process = Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null");
        process.StandardInput.Close();
        return process;
    }

    private const string NotRegisteredReason = "the prolog did not register this job with a sampler on this node (prolog not configured, failed, or PrologFlags without Alloc)";
    private const string WithdrawnReason = "its prolog gave up waiting for the node sampler and withdrew the registration (the sampler was stalled)";

    /// <summary>
    /// Whether the job's prolog withdrew its registration (<see cref="Withdraw"/>): then the job is not measured here, and
    /// state a stalled sampler made for it before the withdrawal is removed (under its finalization lock; a sampler that
    /// wakes drops the job by the marker that follows). A withdrawal older than the registration in the state dir is an
    /// earlier run's.
    /// </summary>
    private static bool WithdrawnRegistration(string dir, AlumetConfig config)
    {
        if (!File.Exists(JobFinalizer.WithdrawnPath(dir))) return false;
        string text;
        try { text = File.ReadAllText(Path.Combine(dir, JobRegistration.File)); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return true; }
        var reg = JobRegistration.Parse(text.Trim(), out _);
        if (reg is null) return false;
        if (JobFinalizer.WithdrawnAfter(dir, reg.StartWallNs) is null)
        {
            File.Delete(JobFinalizer.WithdrawnPath(dir)); // an earlier run's, whose epilog never came
            return false;
        }
        return JobStateCleanup.TryRemoveIdle(dir, config.Paths.ProcfsRoot) || !Directory.Exists(dir); // or the woken sampler removed it
    }

    /// <summary>
    /// This run's answer from its state moved aside (<see cref="JobStateCleanup.RunAside"/>) by a later run of the job id:
    /// its finalized marker, or its kept dir, which the node sampler finalizes (JobFinalizer.RetryExports); else null.
    /// </summary>
    private static StopResult? FromAside(JobIdentity job, string dir)
    {
        string aside = JobStateCleanup.RunAside(dir, job.RunId);
        if (JobFinalizer.FinalizedLine(aside) is { } line)
            return new StopResult("already", $"job {job.JobId}: run {job.RunId} already finalized ({line})");
        return Directory.Exists(aside)
            ? new StopResult("already", $"job {job.JobId}: run {job.RunId} was ended when a later run of the job id registered; the node sampler finalizes it from its kept spool {aside}")
            : null;
    }

    /// <summary>The run registered in the job's state dir when it is not <paramref name="runId"/> (a registration that
    /// names no run, of a prolog of an earlier version, is taken as any run's: null).</summary>
    private static string? OtherRunIn(string dir, string runId)
    {
        string? text = TextFile.ReadTrimmed(Path.Combine(dir, JobRegistration.File));
        string? placed = text is null ? null : JobRegistration.Parse(text, out _)?.Job.RunId;
        return placed is { Length: > 0 } && placed != runId ? placed : null;
    }

    /// <summary>
    /// The answer of an epilog that knows its run when the job's place is another run's: this run's state moved aside by a
    /// later run (<see cref="FromAside"/>), or, where the state dir is another run's, this run recorded as not registered
    /// here (<see cref="NotRegisteredBeside"/>). Null when the state dir is this run's or names no run, or the epilog does
    /// not know its run.
    /// </summary>
    private static StopResult? AnsweredBesideAnotherRun(JobIdentity job, string dir, AlumetConfig config)
    {
        if (job.RunId.Length == 0) return null;
        if (FromAside(job, dir) is { } aside) return aside;
        return OtherRunIn(dir, job.RunId) is { } placed ? NotRegisteredBeside(job, dir, config, placed) : null;
    }

    /// <summary>
    /// A run not registered here while the job's state dir is another run's (<paramref name="placed"/>): recorded
    /// not_measured, its marker beside that state as a run moved aside (<see cref="JobStateCleanup.RunAside"/>), so that a
    /// repeated epilog of it is answered "already finalized" and nothing of the other run is touched (no marker in its
    /// place, no signal to the sampler).
    /// </summary>
    private static StopResult NotRegisteredBeside(JobIdentity job, string dir, AlumetConfig config, string placed)
    {
        JobFinalizer.RecordNotMeasured(job, config, NotRegisteredReason);
        try { JobFinalizer.MarkNotMeasured(JobStateCleanup.RunAside(dir, job.RunId), NotRegisteredReason, job.RunId); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warn($"job {job.JobId}: run {job.RunId}'s not_measured marker could not be written ({ErrorText.Describe(e)}); a repeated epilog of it records it again");
        }
        return new StopResult("not_measured", $"job {job.JobId}: run {job.RunId} has no sampler state here (the job's state in {dir} is its run {placed}'s)");
    }

    /// <summary>
    /// Ends the job: the node sampler closes its last period now, writes its Parquet file and row, and answers. When
    /// no sampler answers within <c>stop_timeout_s</c> (gone, hung), the job is finalized here from its spool, partial.
    /// No state at all means the prolog never ran here: the row says "not measured" and why.
    /// </summary>
    public static StopResult StopAndFinalize(JobIdentity job, AlumetConfig config)
    {
        string dir = job.StateDirectory(config.Paths.StateDir);
        try
        {
            // An epilog that knows its run answers for that run only: its state moved aside by a later run (a requeue),
            // or, where the job's state dir is another run's, this run was not registered here. That state is never
            // touched: neither ended (the sampler refuses an end of another run: NodeSampler.End) nor finalized here.
            if (AnsweredBesideAnotherRun(job, dir, config) is { } own)
                return own;
            // A marker of another run answers only that run's epilogs: this run (a requeue of the job id whose prolog did
            // not register it here) is recorded below. One that names no run (a version before
            // 2026-12-02 wrote it), or an epilog that does not know its run (OAR's, Slurm 22.05's), is taken as this run's,
            // as before: a not_measured row and marker for a run that was measured would misstate it.
            string? done = JobFinalizer.FinalizedLine(dir);
            string? finalized = done is null ? null : JobFinalizer.FinalizedRun(dir);
            bool otherRun = job.RunId.Length > 0 && finalized is not null && finalized != job.RunId;
            if (done is not null && !otherRun)
                return new StopResult("already", $"job {job.JobId}: already finalized ({done})");
            // Another run's marker is there: nothing of this run was applied (a registration removes it), so a withdrawal
            // is this run's prolog's, and a state dir is the other run's, kept: never removed here.
            bool withdrawn = otherRun ? File.Exists(JobFinalizer.WithdrawnPath(dir)) : WithdrawnRegistration(dir, config);
            if (withdrawn || otherRun || (!File.Exists(Path.Combine(dir, JobRegistration.File)) && !File.Exists(Path.Combine(dir, Spool.SpoolWriter.MetaFile))))
            {
                // The run id its measuring nodes use where the scheduler says it (the SLUID, Slurm's job start: SlurmHook.ParseJob);
                // else only this epilog's time, which names no other node's run (README "Run id").
                if (job.RunId.Length == 0) job = job with { RunId = RunId.FromStart(DateTime.UtcNow) };
                string reason = withdrawn ? WithdrawnReason : NotRegisteredReason;
                JobFinalizer.RecordNotMeasured(job, config, reason);
                // Its marker, as every other finalization leaves one: a registration made before it (a prolog's that a
                // stalled sampler reads late, whatever its version) is then refused (NodeSampler.Late), not applied over the row.
                try
                {
                    // The other run's marker is kept beside, as that run's: a late epilog of it is answered from there.
                    if (otherRun && RunId.IsValid(finalized) && File.Exists(JobFinalizer.MarkerPath(dir)))
                        JobFinalizer.MoveMarkerAside(JobFinalizer.MarkerPath(dir), dir, finalized!);
                    JobFinalizer.MarkNotMeasured(dir, reason, job.RunId);
                    // A sampler stopped inside that registration (past its checks) drops the job at its next wake.
                    FinalizedElsewhere.Raise(Spool.NodeSpool.Root(config), JobRegistration.KeyOf(job.Scheduler, job.JobId));
                    if (withdrawn) File.Delete(JobFinalizer.WithdrawnPath(dir)); // the marker refuses a late registration from now on
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // The row is recorded: the outcome stays not_measured; only the late-registration guard is missing.
                    Log.Warn($"job {job.JobId}: its not_measured marker could not be written ({ErrorText.Describe(e)}); a registration read late by a stalled sampler is not refused by it");
                }
                return new StopResult("not_measured", withdrawn ? $"job {job.JobId}: {WithdrawnReason}" : $"job {job.JobId}: no sampler state in {dir}");
            }

            var sw = Stopwatch.StartNew();
            var timeout = TimeSpan.FromSeconds(config.Sampler.StopTimeoutS);
            // With its run when the epilog knows it: a sampler then never ends another run of the job id (a sampler of an
            // earlier version ignores it).
            string request = $"end scheduler={job.Scheduler} job={job.JobId}{(job.RunId.Length > 0 ? " run=" + job.RunId : "")}";
            string? answer = NodeSocket.Request(config.Paths.StateDir, request, timeout, out string? error);
            // Nothing listens, yet a node sampler holds the node lock: it is starting (it takes the registered jobs back
            // before it listens) or closing, not gone. Asked again within the same bound; it finalizes the job itself.
            while (answer is null && NothingListens(error) && sw.Elapsed < timeout && NodeSamplerHost.LockHeld(config))
            {
                Thread.Sleep(20);
                answer = NodeSocket.Request(config.Paths.StateDir, request, timeout - sw.Elapsed, out error);
            }
            if (answer is not null && answer.StartsWith("ok", StringComparison.Ordinal))
                return new StopResult("stopped", $"job {job.JobId}: node sampler finalized it in {sw.Elapsed.TotalMilliseconds:0} ms ({answer[2..].Trim()})");
            // Another run of the job id registered meanwhile (it moved this run aside, or this run was never registered here).
            if (answer is not null && answer.IndexOf(NodeSampler.NotTheRegisteredRun, StringComparison.Ordinal) is int at and >= 0)
                return FromAside(job, dir) ?? NotRegisteredBeside(job, dir, config, answer[(at + NodeSampler.NotTheRegisteredRun.Length)..].Split(':')[0].Trim());
            if (JobFinalizer.FinalizedLine(dir) is { } line)
                return new StopResult("already", $"job {job.JobId}: already finalized ({line})");

            string why = answer is not null
                ? answer.EndsWith(" is not registered\n", StringComparison.Ordinal)
                    ? $"the node sampler did not know the job ({answer.Trim()}); data up to its last flush kept"
                    : $"the node sampler could not finalize the job ({answer.Trim()}); finalized from its spool"
                // Gone: nothing listens, or its recorded process is dead (whatever the socket said under load).
                : NothingListens(error) || !DaemonMayStillStart(config)
                    ? "the sampler died before the end of the job (crash or kill); data up to its last flush kept"
                    : $"the node sampler did not finalize the job within {config.Sampler.StopTimeoutS} s ({error}); finalized from its spool";
            Log.Warn($"job {job.JobId}: {why}");
            var o = JobFinalizer.Finalize(dir, config, complete: false, why, detachSpool: true); // the sampler may be hung, not gone
            // A node sampler that is hung, not gone, drops the job when it wakes: told once, not found by polling markers.
            if (o.Status != JobFinalizer.AlreadyStatus) FinalizedElsewhere.Raise(Spool.NodeSpool.Root(config), JobRegistration.KeyOf(job.Scheduler, job.JobId));
            return o.Status == JobFinalizer.AlreadyStatus
                ? new StopResult(o.Status, $"job {job.JobId}: already finalized by another process ({o.Reason})")
                : new StopResult(o.Status, $"job {job.JobId}: sampler was not running; finalized {o.Status} from its spool ({why})");
        }
        catch (Exception e)
        {
            Log.Error($"job {job.JobId}: stop/finalize failed: {ErrorText.Describe(e)}");
            return new StopResult("error", $"job {job.JobId}: stop/finalize failed: {ErrorText.Describe(e)}");
        }
    }
}
