using System.Globalization;
using System.Text;
using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Schedulers;
using Alumet.Hpc.Sources.Estimate;
using Alumet.Hpc.Sources.Nvml;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// The node's one sampler, as a pipeline: sources → <see cref="MeasurementBuffer"/> → one snapshot per period split
/// between ALL registered jobs (<see cref="NodeSplit"/>, GPU ownership) → outputs (each job's spool, the root-only
/// node spool; at a job's end its Parquet file and accounting row through <see cref="JobFinalizer"/>).
/// Every period takes the counters, /proc/stat and every job's cgroup once, at one instant, so for every domain and
/// interval node = Σ jobs + unattributed exactly, with the same timestamps in every file of the node.
/// <see cref="Sampler"/> schedules it (<see cref="ISamplingPlan.Snapshot"/>, which leaves no period shorter than half
/// a period after a registration or an end); tests drive <see cref="Snapshot"/> with chosen clocks.
/// </summary>
public sealed class NodeSampler : ISamplingPlan, IRawReadSink, IDisposable
{
    private const string CpuTimeAttribution = " | Attribution: one snapshot per period split between all the node's jobs: node energy × job cgroup CPU time / max(node busy CPU time, all jobs' CPU time); GPUs whole to the job they are allocated to; the rest is unattributed.";
    private const string SharedExecAttribution = " | Attribution: the whole node for the periods the command was alone on it; otherwise one snapshot per period split between all the node's jobs: node energy × job cgroup CPU time / max(node busy CPU time, all jobs' CPU time); the rest is unattributed.";

    private readonly AlumetConfig _cfg;
    private readonly SourceSet _sources;
    private readonly ProcStat? _procStat;
    private ulong _lastBusyTicks;
    private readonly object _gate = new();      // registry and snapshots
    private readonly Lock _spoolGate = new();   // every spool append/flush (a Lock: taken on every raw tick, SourceSlot.Gate)
    private readonly Dictionary<string, NodeJob> _jobs = new(StringComparer.Ordinal);
    private NodeJob[] _jobArray = [];
    private readonly List<NodeJob> _windowed = new(); // jobs whose window of the node's raw reads is open (under _spoolGate)
    private long _nodeReads;                          // raw records the tick appended to the node's spool (under _spoolGate)
    private volatile bool _rawStorage;
    private bool[][] _gpuOwns = [];             // per job: which channels are its GPUs
    private readonly NodeSpool _node;
    private readonly EnergyChannel[] _channels; // the buffer's, indexed on every raw read (an array: no interface call)
    // Per-period scratch, sized once (channels) or grown with the job count: no allocation per period otherwise.
    private readonly ulong[] _delta;
    private readonly SpoolFlags[] _flags;
    private readonly long[] _intervals;
    private ulong[] _cpu = [];
    private ulong[] _shares = [];
    private JobCpu[] _jobCpus = [];
    private readonly ParentCgroups _parents = new(); // the scheduler's cgroups above the jobs': a lost job cgroup's CPU time
    private long _emptySinceNs;
    private bool _hadJob;
    private bool _namedByScheduler; // the node's name came from a scheduler's hook (exec jobs take it, never set it)
    private bool _stopped;
    private int _finalizing; // ends still writing their Parquet + row: the sampler does not exit under them
    private int _retrying;   // RetryBit.*: one thread of each kind at a time
    private readonly Thread?[] _retries = new Thread?[3];
    private readonly FinalizedElsewhere _finalizedElsewhere;
    private readonly IJobFinalization _finalization;
    private long _markerReads;

    public MeasurementBuffer Buffer { get; }
    public string StateRoot => _cfg.Paths.StateDir;
    public IReadOnlyList<EnergyChannel> Channels => Buffer.Channels;
    /// <summary>Stop once the last job has ended (one-job hosts: <c>sample</c>, <c>exec</c>) instead of lingering.</summary>
    public bool StopWhenEmpty { get; init; }
    public long Snapshots { get; private set; }
    public string? LastError { get; private set; }
    /// <summary>Finalizations that failed (each logged once, where it failed, with the spool kept).</summary>
    public int FinalizationFailures => Volatile.Read(ref _finalizationFailures);
    private int _finalizationFailures;
    /// <summary>ctl pause (<see cref="Pause"/>) to ctl resume: no reads and no periods.</summary>
    public bool Paused => Buffer.Paused;
    /// <summary>Where a job's cgroups are: the scheduler table by default; tests pass generated layouts.</summary>
    public Func<JobRegistration, AlumetConfig, IJobCgroupLocator?> Locators { get; init; } =
        (reg, cfg) => SchedulerNames.Locator(cfg, reg.Job, reg.Sluid);
    public int JobCount { get { lock (_gate) return _jobs.Count; } }
    /// <summary>Jobs' finalized markers read by the housekeeping (only after another process signalled a finalization).</summary>
    public long MarkerReads => Interlocked.Read(ref _markerReads);
    /// <summary>Monotonic ns at the end of the first read of every counter (the constructor's: the baseline of the first period).</summary>
    public long PrimedNs { get; }
    /// <summary>Monotonic ns that status's first_sample_ms counts from (the daemon's start).</summary>
    public long OriginNs { get; init; }
    /// <summary>Told when the tick rate may have changed (a job registered, ended or dropped; a setting changed).</summary>
    public Action? RateChanged { get; set; }

    /// <summary>A sampler that finalizes ended jobs in its own process (one-job hosts, tests).</summary>
    public NodeSampler(AlumetConfig cfg, SourceSet sources, long startMonotonicNs)
        : this(cfg, sources, startMonotonicNs, new InProcessFinalization(cfg)) { }

    /// <param name="finalization">Where ended jobs get their Parquet file and row: the node daemon passes a
    /// <see cref="FinalizerProcess"/>, so nothing here references the writers (they are trimmed from its binary).</param>
    public NodeSampler(AlumetConfig cfg, SourceSet sources, long startMonotonicNs, IJobFinalization finalization)
    {
        _cfg = cfg;
        _finalization = finalization;
        _sources = sources;
        Buffer = new MeasurementBuffer(sources.Slots, startMonotonicNs);
        _channels = Buffer.Channels.ToArray();
        int n = _channels.Length;
        _delta = new ulong[n];
        _flags = new SpoolFlags[n];
        _intervals = new long[n];
        try { _procStat = new ProcStat(cfg.Paths.ProcfsRoot); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.Warn($"node sampler: {e.Message}: CPU-time split disabled, node energy unattributed"); }
        if (_procStat?.TryRead(out ulong busy, out _) == true) _lastBusyTicks = busy; // primed: the first period counts
        // Prime every counter now: the first period starts here, not at the first tick.
        foreach (var slot in sources.Slots) Buffer.Prime(slot, startMonotonicNs);
        PrimedNs = Clock.MonotonicNs();
        _node = new NodeSpool(cfg, sources, ExportDay) { Opened = NodeDayOpened };
        _finalizedElsewhere = new FinalizedElsewhere(NodeSpool.Root(cfg));
        _emptySinceNs = startMonotonicNs;
        UpdateRawSink();
    }

    // ---------------------------------------------------------------- registry

    /// <summary>Registers a job (prolog, or recovery from its state directory after a restart). Idempotent for a run: a
    /// later run of a registered job id ends the registered run first (<see cref="EndForLaterRun"/>).</summary>
    /// <param name="wallNs">The wall clock at <paramref name="monotonicNs"/> (0: now), for the period this closes at raw storage.</param>
    public string Register(JobRegistration reg, bool recovered, long monotonicNs, long wallNs = 0)
    {
        lock (_gate)
        {
            if (_stopped) throw new InvalidOperationException("the node sampler is stopping; retry (a new one starts)");
            // The same run again (a prolog's retry) changes nothing. Another run id is a later run of the job id (a requeue
            // whose earlier run's epilog never came: the node went down and a restarted sampler took that run back); a
            // registration without one (a prolog of a version before run ids) cannot say, and is taken as the same run.
            if (_jobs.TryGetValue(reg.Key, out var earlier) && (recovered || reg.Job.RunId.Length == 0 || reg.Job.RunId == earlier.Spool.Meta.RunId))
                return $"job {reg.Job.JobId} already registered";
            if (!recovered && Late(reg, _cfg) is { } late) throw new RegistrationRefused(late);
            bool execJob = reg.Job.Scheduler == SchedulerNames.Exec;
            // One sampler per state_dir serves ONE node (the node name its hooks give): two logical nodes sharing a
            // state_dir would mix their jobs in one split. An exec runs on this node, whatever its scheduler calls it.
            if (execJob && _hadJob) reg = reg with { Job = reg.Job with { Node = _node.Node } };
            else if (_hadJob && reg.Job.Node != _node.Node && _namedByScheduler)
                throw new InvalidOperationException($"this node sampler serves node {_node.Node}, not {reg.Job.Node}: give each node (each slurmd) its own [paths] state_dir");
            // An exec job's own cgroup: read only at the one place exec creates it under our cgroup root, root's.
            IJobCgroupLocator? execLocator = null;
            if (reg.Cgroup is { } cgroup)
            {
                if (!ExecCgroup.IsPathOf(_cfg.Paths.CgroupRoot, reg.Job.JobId, cgroup, out var version, out string? problem))
                    throw new InvalidOperationException($"job {reg.Job.JobId}: {problem}");
                execLocator = new ExecCgroupLocator(new JobCgroup(reg.Job.JobId, cgroup, version));
            }
            // The admin's cap on the jobs' own requests for raw storage (1 kHz, SCHED_FIFO, ~4 MB per job-minute).
            string rawNote = "";
            if (reg.Raw && !recovered && _cfg.Sampler.JobRaw != "allow")
            {
                reg = reg with { Raw = false };
                rawNote = ", its raw-storage request ignored ([sampler] job_raw = \"deny\")";
            }
            string dir = reg.Job.StateDirectory(_cfg.Paths.StateDir);
            long endWallNs = wallNs != 0 ? wallNs : Clock.WallNs();
            if (!recovered) MoveEarlierRunAside(dir, reg.Job.JobId, earlier is null ? null : () => EndForLaterRun(earlier, monotonicNs, endWallNs));
            Directory.CreateDirectory(dir);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            if (!recovered)
            {
                foreach (string stale in new[] { SpoolWriter.RecordsFile, SamplerFiles.Finalized, SamplerFiles.ExportPending, SamplerFiles.FinalizeError, "stats.json", NodeReadWindows.FileName, NodeReadWindows.DoneFileName, NodeReadWindows.MergedFile })
                    File.Delete(Path.Combine(dir, stale)); // a requeued job id starts a fresh spool
                // and is not "already finalized" by its previous run: unless the marker is newer than this registration
                // (its epilog ran while this sampler was stopped since Late above), which is kept and refuses it.
                if (ForgetEarlierRunsMarker(dir, reg) is { } finalized) throw new RegistrationRefused(finalized);
            }
            // A window of node reads its killed sampler left open ends where that sampler stopped writing the node's
            // spool (NodeReadWindows): closed before the spool is reopened, which closes the reads no split covered.
            var windows = recovered ? NodeReadWindows.Load(dir) : new NodeReadWindows();
            if (windows.IsOpen)
            {
                lock (_spoolGate) windows.Cut(windows.Day is { } day ? _node.EndBeforeThisProcess(day) : 0);
                if (!windows.TryWrite(dir, out string? error)) Log.Warn($"job {reg.Job.JobId}: {dir}/{NodeReadWindows.FileName} could not be written ({error}); retried at the next flush");
            }
            bool exclusive = reg.Exclusive || _cfg.Sampler.Attribution == "exclusive";
            var locator = exclusive ? null : execLocator ?? Locators(reg, _cfg);
            // exec alone: charged the whole node as long as it stays so (a recovered one that has shared keeps saying so).
            bool shared = recovered && reg.ExclusiveWhenAlone && SharedBefore(dir);
            bool alone = reg.ExclusiveWhenAlone && _jobs.Count == 0 && !shared;
            long startWallNs = reg.StartWallNs > 0 ? reg.StartWallNs : Clock.WallNs();
            var meta = new SpoolMeta
            {
                ToolVersion = ToolInfo.Version, Scheduler = reg.Job.Scheduler, Cluster = reg.Job.Cluster, JobId = reg.Job.JobId, JobName = reg.Job.JobName,
                RunId = reg.Job.RunId.Length > 0 ? reg.Job.RunId : RunId.Of(reg.Sluid, Clock.FromWallNs(startWallNs)),
                User = reg.Job.User, Uid = reg.Job.Uid, Node = reg.Job.Node,
                StartWallNs = startWallNs,
                StoragePeriodMs = Raw(reg) ? 0 : PeriodMs, AttributionPeriodMs = PeriodMs,
                AttributionMode = exclusive || locator is null || alone ? "exclusive" : "cgroup-cpu-time",
                Perimeter = _sources.Perimeter + (exclusive || locator is null || alone
                    ? " | Attribution: exclusive, the whole node is charged to the job."
                    : reg.ExclusiveWhenAlone ? SharedExecAttribution : CpuTimeAttribution),
                EstimateModel = _sources.EstimateModel,
            };
            foreach (var slot in _sources.Slots) meta.SourceHz[slot.Source.Name] = slot.Hz;
            var job = new NodeJob(reg, exclusive || locator is null, reg.ExclusiveWhenAlone && !exclusive && locator is not null, new JobCpu(reg.Job, locator, recovered),
                new SeriesSpool(dir, meta, reopen: recovered), _sources.JobGpuChannels(reg.Gpus, reg.Job.JobId, Channels), monotonicNs, recovered);
            job.Shared = shared;
            job.Windows = windows;
            // Written whole or not at all (temp file + rename): a reader (exec waiting for its registration, the recovery
            // after a sampler crash) never sees it created but still empty.
            AtomicFile.WriteAllText(Path.Combine(dir, JobRegistration.File), reg.ToLine() + "\n");
            // At raw storage the node series is one row per read, stored only while the sink is set, and a job alone gets
            // them too: a job that switches raw storage on, or joins another, closes the period here, with the reads held
            // off until the sink matches the new job set; every period's reads then sum to its split (parquet check).
            // Aggregated too, as an end does: the job's first interval starts at its registration, not at the last
            // snapshot (its Start, Elapsed and a GPU it holds got the whole period, before it existed) — unless that was
            // less than one /proc/stat tick ago (ShortestRegistrationPeriodNs), or the job is taken back by a restarted
            // sampler (it counts from that sampler's start: Recover).
            long sinceSnapshot = monotonicNs - Buffer.LastSnapshotNs;
            bool boundary = sinceSnapshot > 0 && !Paused
                && (RawStorage || Raw(reg) || (!recovered && sinceSnapshot >= ShortestRegistrationPeriodNs));
            using (ClosePeriodIf(boundary, monotonicNs, wallNs != 0 ? wallNs : Clock.WallNs()))
            {
                _jobs[reg.Key] = job;
                if (!_hadJob || (!execJob && !_namedByScheduler)) lock (_spoolGate) _node.NameFrom(reg.Job);
                _namedByScheduler |= !execJob;
                Rebuild(wallNs);
                // Checked again, now that the job is in the registry: a sampler stopped (SIGSTOP, descheduled) since the
                // first check may have let its prolog give up on it, or its epilog record it not_measured. Undone, never
                // kept; a marker written after this is seen by the housekeeping (the epilog raises FinalizedElsewhere
                // after its marker, and Housekeep reads that signal before the registry: Housekeep).
                if (!recovered && Late(reg, _cfg) is { } lateNow)
                {
                    _jobs.Remove(reg.Key);
                    Rebuild();
                    lock (_spoolGate) job.Spool.Dispose();
                    job.Cpu.Dispose();
                    if (_jobs.Count == 0) _emptySinceNs = monotonicNs;
                    try { Directory.Delete(dir, recursive: true); } // its registration file: no restarted sampler recovers it
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.Warn($"job {reg.Job.JobId}: {dir} not removed: {e.Message}"); }
                    throw new RegistrationRefused(lateNow);
                }
            }
            _hadJob = true;
            // The earlier run ended here gets its row now, from its spool moved aside (else at a later job's end).
            if (earlier is not null) _ = InBackground(RetryBit.Exports, "export-retry", "kept spools: export retry", _finalization.RetryExports);
            return $"job {reg.Job.JobId} registered ({_jobs.Count} job(s) on the node{(recovered ? ", recovered after a sampler restart" : "")}{(reg.Raw ? ", raw storage" : "")}{rawNote})";
        }
    }

    /// <summary>
    /// The shortest period a registration closes at aggregated storage: one /proc/stat tick. A shorter one's busy time is 0
    /// or 1 tick per CPU, which splits it by chance; the job's first interval then starts at the last snapshot, at most
    /// a tick before the job existed (less than NVML's own read interval, 20-100 ms).
    /// </summary>
    private const long ShortestRegistrationPeriodNs = ProcStat.NsPerTick;

    /// <summary>
    /// Why a prolog's registration must not be applied now, or null: its prolog gave up on it (its <c>until_boot</c>,
    /// else its <c>until</c>, is past: a sampler stalled while the prolog waited reads it afterwards, maybe after the
    /// job's epilog), or the job was finalized after the registration was made (its marker is newer than the
    /// registration's start). Applied, it would delete the marker and replace the epilog's row with a measurement of a
    /// job that had ended.
    /// </summary>
    internal static string? Late(JobRegistration reg, AlumetConfig cfg)
    {
        long now = Clock.WallNs();
        // By CLOCK_BOOTTIME when the prolog gave it (no step of the wall clock during the stall lets a late one through,
        // or refuses one in time); by the wall clock for a prolog of an earlier version, which gave only that.
        long late = reg.ApplyByBootNs > 0 ? Clock.BootNs() - reg.ApplyByBootNs : reg.ApplyByWallNs > 0 ? now - reg.ApplyByWallNs : 0;
        if (late > 0)
            return $"job {reg.Job.JobId}: registration not applied: its prolog gave up on it at {Stamp(now - late)}, "
                + $"{late / 1_000_000_000.0:0.0} s before the sampler read it (the sampler was stalled)";
        string dir = reg.Job.StateDirectory(cfg.Paths.StateDir);
        if (WithdrawnAt(reg, cfg) is { } withdrawn)
            return $"job {reg.Job.JobId}: registration not applied: its prolog withdrew it at {withdrawn:yyyy-MM-ddTHH:mm:ss.fff}Z (it gave up waiting for the answer)";
        foreach (string marker in new[] { JobFinalizer.MarkerPath(dir), Path.Combine(dir, SamplerFiles.Finalized) })
        {
            var written = File.GetLastWriteTimeUtc(marker); // 1601-01-01 when absent
            if (reg.StartWallNs > 0 && written > Clock.FromWallNs(reg.StartWallNs))
                return $"job {reg.Job.JobId}: registration not applied: the job was finalized at {written:yyyy-MM-ddTHH:mm:ss.fff}Z, after its prolog registered it at {Stamp(reg.StartWallNs)}";
        }
        return null;
    }

    /// <summary>The run a finalized marker names when it is another run than the registration's (both known), else null.</summary>
    private static string? OtherRunsMarker(string marker, JobRegistration reg) =>
        reg.Job.RunId.Length > 0 && JobFinalizer.MarkerFile(marker)?.Run is { } run && run != reg.Job.RunId && RunId.IsValid(run) ? run : null;

    /// <summary>When its prolog gave up on this registration and withdrew it (<see cref="JobFinalizer.WithdrawnPath"/>), or null.</summary>
    private static DateTime? WithdrawnAt(JobRegistration reg, AlumetConfig cfg) =>
        reg.StartWallNs > 0 ? JobFinalizer.WithdrawnAfter(reg.Job.StateDirectory(cfg.Paths.StateDir), reg.StartWallNs) : null;

    /// <summary>
    /// Takes away the finalized marker of an earlier run of the job id (a requeue), or returns why the registration must
    /// not be applied when the marker is of this run (or names none) and is newer than the registration: the marker is
    /// first taken away by a rename (atomic), then judged, and put back when newer (without replacing one written
    /// meanwhile), so a marker the job's epilog writes while this runs is never the one removed. A marker that names
    /// another run is that run's: moved beside, where a late epilog of that run is answered from it (JobFinalizer.MoveMarkerAside).
    /// </summary>
    private static string? ForgetEarlierRunsMarker(string dir, JobRegistration reg)
    {
        string marker = JobFinalizer.MarkerPath(dir);
        string claimed = $"{marker}.{Environment.ProcessId}.{Environment.CurrentManagedThreadId}.old";
        try { File.Move(marker, claimed, overwrite: true); } // rename(2)
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        if (OtherRunsMarker(claimed, reg) is { } run)
        {
            JobFinalizer.MoveMarkerAside(claimed, dir, run);
            return null;
        }
        var written = File.GetLastWriteTimeUtc(claimed);
        if (reg.StartWallNs <= 0 || written <= Clock.FromWallNs(reg.StartWallNs))
        {
            File.Delete(claimed);
            return null;
        }
        try { File.Move(claimed, marker, overwrite: false); } // link(2): a newer marker written meanwhile stays
        catch (IOException) { File.Delete(claimed); }
        return $"job {reg.Job.JobId}: registration not applied: the job was finalized at {written:yyyy-MM-ddTHH:mm:ss.fff}Z, after its prolog registered it at {Stamp(reg.StartWallNs)}";
    }

    /// <summary>Why a run ended by <see cref="EndForLaterRun"/> is partial (the first words of its row's reason).</summary>
    public const string LaterRunReason = "the job id was registered again by a later run before this run's end came";

    /// <summary>
    /// Ends a registered run of a job id that a later run registers (its epilog never came), under its state dir's lock
    /// (<see cref="MoveEarlierRunAside"/>, which then moves it aside): its last period closes now (<see cref="CloseJob"/>),
    /// and its spool is kept with why (<see cref="SamplerFiles.EndReason"/>), to be finalized, partial, as a kept spool
    /// whose finalization failed is (<see cref="JobFinalizer.RetryExports"/>). The reason is written before the run is
    /// touched: a state dir that cannot take it refuses the later registration and leaves the run as it was.
    /// </summary>
    private void EndForLaterRun(NodeJob earlier, long monotonicNs, long wallNs)
    {
        string file = Path.Combine(earlier.Directory, SamplerFiles.EndReason), run = earlier.Spool.Meta.RunId, jobId = earlier.Registration.Job.JobId;
        try
        {
            AtomicFile.WriteAllText(file, LaterRunReason + "\n");
            JobFinalizer.MarkExportsPending(_cfg.Paths.StateDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"job {jobId}: its run {run}, still registered, could not be ended for this later run ({ErrorText.Describe(e)}); free the state_dir and retry");
        }
        // As at an end, the run's own losses join its reason (it is partial whatever they are).
        var (_, reason) = CloseJob(earlier, complete: true, LaterRunReason, monotonicNs, wallNs);
        try { if (reason != LaterRunReason) AtomicFile.WriteAllText(file, reason + "\n"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warn($"job {jobId}: its run {run}'s whole reason could not be kept for its row ({ErrorText.Describe(e)}): {reason}");
        }
        Log.Info($"job {jobId}: its run {run} ended: {reason}");
    }

    /// <summary>How long a registration waits for an export retry that holds the earlier run's lock (within the prolog's bound).</summary>
    private static readonly TimeSpan EarlierRunWait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// A reused job id (a requeue) never replaces an earlier run: a state dir whose export or whole finalization failed
    /// (its spool the only copy, retried by JobFinalizer.RetryExports) is renamed under its lock to
    /// <c>&lt;job&gt;.run-&lt;run id&gt;</c>, a name that is no job id, where the retry still finds it (it reads the job from
    /// the spool, not from the name).
    /// </summary>
    /// <param name="endRun">Ends the earlier run, still registered, under the lock (<see cref="EndForLaterRun"/>); null when none is.</param>
    private static void MoveEarlierRunAside(string dir, string jobId, Action? endRun = null)
    {
        string pending = Path.Combine(dir, SamplerFiles.ExportPending);
        bool Kept() => File.Exists(pending) || JobFinalizer.EndedUnfinalized(dir);
        if (endRun is null && !Kept()) return;
        using var claim = FinalizationLock.Acquire(dir, EarlierRunWait, out bool busy);
        if (busy) throw new InvalidOperationException($"job {jobId}: the kept spool of its earlier run in {dir} is being exported; retry the registration once that export is done");
        endRun?.Invoke(); // without its state dir (claim null) it cannot be ended: it says so, and this registration is refused
        if (claim is null || !Kept()) return; // exported meanwhile: nothing left to keep
        string runId;
        try { runId = SpoolWriter.ReadMeta(dir).RunId; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidDataException) { runId = ""; }
        if (runId.Length == 0 || !runId.All(char.IsAsciiLetterOrDigit)) runId = Clock.WallNs().ToString(CultureInfo.InvariantCulture);
        string aside = JobStateCleanup.RunAside(dir, runId);
        if (Path.Exists(aside)) aside += "-" + Clock.WallNs().ToString(CultureInfo.InvariantCulture);
        try { Directory.Move(dir, aside); } // rename(2); the retry takes the lock we hold before it reads the dir
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"job {jobId}: the kept spool of its earlier run in {dir} could not be moved aside ({ErrorText.Describe(e)}); free the state_dir and retry, the spool is left where it is");
        }
        Log.Info($"job {jobId}: the earlier run's spool, kept unexported (its export or finalization failed, or it ended when this run registered), is now {aside}; exported when a later job on this node ends");
    }

    private static string Stamp(long wallNs) => Clock.FromWallNs(wallNs).ToString("yyyy-MM-ddTHH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture) + "Z";

    /// <summary>A registration that must not be applied (<see cref="Late"/>): said once in the sampler's log.</summary>
    public sealed class RegistrationRefused(string message) : InvalidOperationException(message);

    /// <summary>
    /// Ends a job at this instant: closes its last period (a snapshot for every job, so all files keep the same
    /// timestamps), removes it, and finalizes it (Parquet + accounting row). Null when the job is not registered.
    /// </summary>
    /// <param name="runId">The run the end is for (an epilog that knows it: SamplerLauncher.StopAndFinalize), or null
    /// (any run: OAR's, Slurm 22.05's, a hook of an earlier version).</param>
    /// <exception cref="OtherRunRegistered">Another run of the job id is registered: nothing is ended.</exception>
    public JobFinalizer.Outcome? End(string key, bool complete, string reason, long monotonicNs, long wallNs, string? runId = null)
    {
        Interlocked.Increment(ref _finalizing);
        try { return EndCore(key, complete, reason, monotonicNs, wallNs, runId); }
        finally { Interlocked.Decrement(ref _finalizing); }
    }

    /// <summary>In the answer to an end of a run that is not the registered one (<see cref="OtherRunRegistered"/>).</summary>
    public const string NotTheRegisteredRun = " is not the registered run ";

    /// <summary>An end for a run of the job id other than the registered one: the late epilog of an earlier run (a
    /// requeue) must never end the later run.</summary>
    public sealed class OtherRunRegistered(string key, string runId, string registered)
        : InvalidOperationException($"job {key} run {runId}{NotTheRegisteredRun}{registered}: nothing ended");

    private JobFinalizer.Outcome? EndCore(string key, bool complete, string reason, long monotonicNs, long wallNs, string? runId)
    {
        NodeJob? job;
        lock (_gate)
        {
            if (!_jobs.TryGetValue(key, out job)) return null;
            // A registration that named no run (a prolog of a version before run ids) is taken as any run's, as Register takes it.
            if (runId is not null && job.Registration.Job.RunId is { Length: > 0 } registered && registered != runId)
                throw new OtherRunRegistered(key, runId, registered);
            (complete, reason) = CloseJob(job, complete, reason, monotonicNs, wallNs);
        }
        string dir = job.Registration.Job.StateDirectory(_cfg.Paths.StateDir);
        try
        {
            var outcome = _finalization.Finalize(dir, complete, reason); // logs the row it wrote
            if (outcome.Status == JobFinalizer.AlreadyStatus)
                Log.Info($"job {job.Registration.Job.JobId}: already finalized by another process ({outcome.Reason})");
            if (!outcome.Stored) RetryOutbox($"job {job.Registration.Job.JobId}");
            // Kept spools whose export failed (a refused dataset key the admin has since fixed): exported now (JobFinalizer.RetryExports).
            if (File.Exists(JobFinalizer.ExportsPendingPath(_cfg.Paths.StateDir)))
                _ = InBackground(RetryBit.Exports, "export-retry", "kept spools: export retry", _finalization.RetryExports);
            return outcome;
        }
        catch (Exception e)
        {
            LastError = $"job {job.Registration.Job.JobId}: finalization failed: {ErrorText.Describe(e)}";
            Interlocked.Increment(ref _finalizationFailures);
            Log.Error($"{LastError}; spool kept in {dir}");
            throw;
        }
    }

    /// <summary>
    /// Closes a registered job at this instant, under the registry's gate: its last period (a snapshot for every job, so
    /// all files keep the same timestamps), its removal, its spool; returns its row's status and reason so far (what the
    /// sampler knows of its losses). The finalization is the caller's.
    /// </summary>
    private (bool Complete, string Reason) CloseJob(NodeJob job, bool complete, string reason, long monotonicNs, long wallNs)
    {
        // No read between the last period's snapshot and the new raw sink (it would be stored raw and counted again).
        using (new SlotsHeld(Buffer.Slots))
        {
            if (!Paused) SnapshotLocked(monotonicNs, wallNs);
            else
            {
                // No split while paused: the job's part of the period the pause opened (Pause), read only after the
                // resume, is never known.
                complete = false;
                reason = Join(reason, "the job ended while the node sampler was paused (ctl pause): its energy since the pause is not attributed");
            }
            _jobs.Remove(job.Registration.Key);
            Rebuild();
        }
        lock (_spoolGate)
        {
            job.Spool.Dispose();
            // The reads of its last window are in the node's spool: in the file before the finalization copies them.
            if (job.Windows.Reads(_nodeReads) > 0) _node.Flush();
            if (job.Windows.Dirty && !job.Spool.Detached && Directory.Exists(job.Directory) && !job.Windows.TryWrite(job.Directory, out string? error))
                reason = Join(reason, $"where its node reads end could not be written ({error}): its file's node rows may run past its end");
            else if (job.Windows.Reads(_nodeReads) > 0 && _node.Failing)
            {
                complete = false;
                reason = Join(reason, "the node's spool could not be written (state dir full): its last node reads are missing from its file");
            }
        }
        job.Cpu.Dispose();
        if (_jobs.Count == 0) _emptySinceNs = monotonicNs;
        // A full state dir cost the time resolution (or, if it never freed, the last records), a meta.json unreadable at
        // the recovery the records before it: the row says so.
        foreach (string problem in job.Spool.Problems)
        {
            complete = false;
            reason = Join(reason, problem);
        }
        if (job.Recovered && complete)
        {
            complete = false;
            reason = Join(reason, "the node sampler restarted during the job (crash or kill): the energy between its last flush and the restart is missing");
        }
        // An exec whose process is gone cannot remove its cgroup: done here (it fails while the command still runs in it).
        if (job.Registration is { Cgroup: { } cg, Owner: { } owner } && !owner.IsAlive() && ExecCgroup.Remove(cg) is { } notRemoved)
            Log.Warn($"job {job.Registration.Job.JobId}: {notRemoved}");
        return (complete, reason);
    }

    /// <summary>
    /// A queued row is retried after the epilog has its answer, by one background thread at a time; counted as a
    /// finalization so the sampler does not exit under it (bounded by <c>[database] retry_s</c>).
    /// </summary>
    private void RetryOutbox(string what) =>
        _ = InBackground(RetryBit.Rows, "outbox-retry", $"{what}: outbox retry", () => _finalization.RetryQueuedRows(what));

    private static class RetryBit
    {
        public const int Rows = 1, Exports = 2, Days = 4;
    }

    /// <summary>Work after an epilog has its answer, on its own thread, one of each <paramref name="bit"/> at a time; counted
    /// as a finalization so the sampler does not exit under it.</summary>
    private bool InBackground(int bit, string name, string what, Action work)
    {
        int seen;
        do
        {
            seen = Volatile.Read(ref _retrying);
            if ((seen & bit) != 0) return false;
        } while (Interlocked.CompareExchange(ref _retrying, seen | bit, seen) != seen);
        Interlocked.Increment(ref _finalizing);
        var t = new Thread(() =>
        {
            try { work(); }
            catch (Exception e) { Log.Warn($"{what} stopped: {ErrorText.Describe(e)}"); }
            finally { Interlocked.And(ref _retrying, ~bit); Interlocked.Decrement(ref _finalizing); }
        }) { Name = name, IsBackground = true };
        lock (_retries) _retries[System.Numerics.BitOperations.Log2((uint)bit)] = t;
        t.Start();
        return true;
    }

    /// <summary>A one-job host (<c>exec</c>, <c>sample</c>) waits for the retries before its process exits.</summary>
    public void WaitForOutboxRetry()
    {
        Thread?[] threads;
        lock (_retries) threads = [.. _retries];
        foreach (var t in threads) t?.Join();
    }

    /// <summary>
    /// A restarted sampler, before it samples, takes back the jobs registered in its state_dir and not finalized
    /// (<see cref="Unfinished"/>; each said in the log), then reads the counters, /proc/stat, every job's cgroup and the
    /// scheduler's cgroups above them (<see cref="ParentCgroups"/>) again at one instant, <paramref name="monotonicNs"/>,
    /// where its first period starts (README "Attribution": a job taken back counts from that sampler's start). Each
    /// registration reads its job's baseline as it reopens its spool, one after the other: the CPU time a job used while
    /// the ones before it were taken back was busy time of the first period in no job's share. Nothing is stored before
    /// that instant (no period closes at a job taken back).
    /// </summary>
    public void Recover(long monotonicNs)
    {
        lock (_gate)
        {
            if (Buffer.LastSnapshotWallNs != 0) throw new InvalidOperationException("jobs are taken back before the first period closes");
            long start = Buffer.LastSnapshotNs; // the constructor's prime
            foreach (var reg in Unfinished(_cfg.Paths.StateDir).ToList())
            {
                try { Log.Info($"node sampler: {Register(reg, recovered: true, start)}"); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException) { Log.Error($"node sampler: could not recover job {reg.Job.JobId}: {e.Message}"); }
            }
            if (_jobs.Count == 0) return;
            // A snapshot's order: the counters, /proc/stat, then the cgroups, the jobs' and then the scheduler's above them
            // (a job cgroup lost in the first period gets its CPU time from there, as in any other).
            Buffer.Reprime(monotonicNs);
            if (_procStat?.TryRead(out ulong busy, out _) == true) _lastBusyTicks = busy;
            foreach (var job in _jobArray) job.Cpu.Rebase();
            _parents.Rebase(_jobCpus);
        }
    }

    /// <summary>Jobs registered in <paramref name="stateRoot"/> and never finalized: what a restarted sampler takes back.</summary>
    public static IEnumerable<JobRegistration> Unfinished(string stateRoot)
    {
        foreach (string scheduler in SchedulerNames.All)
        {
            string dir = Path.Combine(stateRoot, scheduler);
            if (!Directory.Exists(dir)) continue;
            foreach (string jobDir in Directory.EnumerateDirectories(dir))
            {
                string file = Path.Combine(jobDir, JobRegistration.File);
                // A job whose finalization failed has ended (its epilog ran), as has a run ended by a later one: finalized
                // again at a later job's end (JobFinalizer.RetryExports), never sampled again (an exclusive one took the
                // whole node from the next job).
                if (!File.Exists(file) || JobFinalizer.FinalizedLine(jobDir) is not null || JobFinalizer.EndedUnfinalized(jobDir)) continue;
                JobRegistration? reg = null;
                try { reg = JobRegistration.Parse(File.ReadAllText(file).Trim(), out _); }
                catch (IOException) { }
                // The directory must be the one the registration names: never follow a planted file elsewhere. One its
                // prolog withdrew is not taken back (its epilog removes it: SamplerLauncher.StopAndFinalize).
                if (reg is not null && reg.Job.StateDirectory(stateRoot) == jobDir && (reg.StartWallNs <= 0 || JobFinalizer.WithdrawnAfter(jobDir, reg.StartWallNs) is null))
                    yield return reg;
            }
        }
    }

    private static bool SharedBefore(string dir)
    {
        try { return SpoolWriter.ReadMeta(dir).AttributionMode == "cgroup-cpu-time"; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidDataException) { return false; }
    }

    /// <param name="wallNs">The caller's wall clock (0: unknown): the day a raw sink set here opens (<see cref="UpdateRawSink"/>).</param>
    private void Rebuild(long wallNs = 0)
    {
        _jobArray = _jobs.Values.ToArray();
        foreach (var j in _jobArray)
        {
            j.Exclusive = j.FixedExclusive || (j.ExclusiveWhenAlone && _jobArray.Length == 1);
            if (!j.ExclusiveWhenAlone || _jobArray.Length == 1 || j.Shared) continue;
            // Its first period with another job: from now on its file says its share was split by CPU time. Written at
            // the spool's next flush, before that period's records (SeriesSpool.MetaChanged): nothing here can fail, so
            // the registration that brought the other job is never refused half-way for a full state dir.
            j.Shared = true;
            lock (_spoolGate)
            {
                j.Spool.Meta.AttributionMode = "cgroup-cpu-time";
                j.Spool.Meta.Perimeter = _sources.Perimeter + SharedExecAttribution;
                j.Spool.MetaChanged();
            }
        }
        if (_cpu.Length < _jobArray.Length) { _cpu = new ulong[_jobArray.Length * 2]; _shares = new ulong[_jobArray.Length * 2]; }
        _gpuOwns = _jobArray.Select(j => j.GpuChannels).ToArray();
        _jobCpus = _jobArray.Select(j => j.Cpu).ToArray();
        UpdateRawSink(wallNs);
        RateChanged?.Invoke();
    }

    /// <summary>
    /// Sets the raw sink while raw storage is wanted, after the day's node spool is open: opening it reads and writes
    /// files and allocates, which the tick (SCHED_FIFO at raw storage) must not do (TickReadsAllocateNothing). The day
    /// of <paramref name="wallNs"/>, else of the last snapshot; with neither (a sampler's first read comes before any
    /// registration, or before its first snapshot), the first read opens it, on the tick loop's first tick, which
    /// runs before the loop goes real-time (Sampler.TickLoop). The windows open before the day does, as when the first
    /// read opened it: the day's opening is a <c>roll</c> in them (<see cref="NodeReadWindows"/>).
    /// </summary>
    private void UpdateRawSink(long wallNs = 0)
    {
        _rawStorage = WantsRawStorage;
        if (!_rawStorage) Buffer.RawSink = null;
        UpdateWindows();
        if (!_rawStorage) return;
        long wall = wallNs != 0 ? wallNs : Buffer.LastSnapshotWallNs;
        if (wall != 0)
        {
            lock (_spoolGate)
            {
                // Never a refused registration for it: the first read tries again (a full state dir).
                try { if (_node.CurrentDirectory is null) _node.Open(wall); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.Warn($"node spool: the day's spool could not be opened ({ErrorText.Describe(e)}); the first raw read tries again"); }
            }
        }
        Buffer.RawSink = this;
    }

    /// <summary>
    /// Opens and closes the jobs' windows of the node's raw reads (<see cref="NodeReadWindows"/>): a job gets them while
    /// raw storage is on and it is alone on the node or exclusive (issue 8 item 5: node series in the user's file only
    /// then). The tick stores each read once, in the node's spool; the window says which of them the job's file holds.
    /// </summary>
    private void UpdateWindows()
    {
        lock (_spoolGate)
        {
            var at = _node.Position;
            for (int i = _windowed.Count - 1; i >= 0; i--)
            {
                var job = _windowed[i];
                if (GetsNodeReads(job)) continue;
                job.Windows.Close(at.Record, _nodeReads);
                WriteWindows(job);
                _windowed.RemoveAt(i);
            }
            foreach (var job in _jobArray)
            {
                if (job.Windows.IsOpen || !GetsNodeReads(job)) continue;
                // Its node series get their ids now, where the tick's first read used to add them, and reach its
                // meta.json before its windows file names records of them.
                for (int c = 0; c < _channels.Length; c++) job.Spool.Series(SpoolSeries.NodeConsumer, c, _channels[c]);
                job.Spool.Flush();
                job.Windows.Open(at, _nodeReads);
                WriteWindows(job);
                _windowed.Add(job);
            }
        }
    }

    /// <summary>Raw storage as the settings and the registered jobs ask it now (<see cref="RawStorage"/> follows it at <see cref="UpdateRawSink"/>).</summary>
    private bool WantsRawStorage => _cfg.Sampler.StoragePeriodMs == 0 || _jobArray.Any(j => j.Registration.Raw);

    private bool GetsNodeReads(NodeJob job) => _rawStorage && (job.Exclusive || _jobArray.Length == 1) && Array.IndexOf(_jobArray, job) >= 0;

    /// <summary>The node's spool opened a day (a UTC midnight, or its first): the tick's ids of its node series are looked up here, off the tick, and every open window goes on there.</summary>
    private void NodeDayOpened(long previousEnd, string day, long start)
    {
        _node.Current!.KnowNodeSeries(_channels);
        foreach (var job in _windowed)
        {
            job.Windows.Roll(previousEnd, day, start);
            WriteWindows(job);
        }
    }

    /// <summary>
    /// Rewrites a job's windows file (small: a few lines per change of the job set or day). Never into a state dir its
    /// epilog took over meanwhile (a hung sampler that resumed: <see cref="SeriesSpool.CheckDetached"/>, as for
    /// meta.json); a failed write is retried at the next flush (the finalization reads the file).
    /// </summary>
    private void WriteWindows(NodeJob job)
    {
        if (job.Spool.CheckDetached()) return;
        if (!job.Windows.TryWrite(job.Directory, out string? error) && !job.WindowsWarned && Directory.Exists(job.Directory)) // gone: finalized elsewhere
        {
            job.WindowsWarned = true;
            Log.Warn($"job {job.Registration.Job.JobId}: {job.Directory}/{NodeReadWindows.FileName} could not be written ({error}); retried at every flush");
        }
    }

    private bool Raw(JobRegistration reg) => reg.Raw || _cfg.Sampler.StoragePeriodMs == 0;

    // ---------------------------------------------------------------- the period

    /// <summary>One snapshot: counters, /proc/stat, every job's cgroup; the split; the rows of every file.</summary>
    public void Snapshot(long monotonicNs, long wallNs)
    {
        lock (_gate) SnapshotLocked(monotonicNs, wallNs);
    }

    /// <summary>
    /// The schedule's snapshot (<see cref="Sampler"/>: every period, on the node's grid), skipped when the open period
    /// began less than half a period before it (a registration, an end or a raw switch closed one just before): that
    /// period then ends at the next one, up to 1.5 periods long, instead of a few ms later, where its power (energy over
    /// interval) would be mostly the counter's ~1 ms refresh (README "Implausible readings"). The grid stays; nothing is
    /// lost or counted twice (the next snapshot takes all since the last one); an end still closes its job's period where
    /// it comes.
    /// </summary>
    void ISamplingPlan.Snapshot(long monotonicNs, long wallNs)
    {
        lock (_gate)
        {
            // Paused: the pause closed the period (the housekeeping asked Paused before the pause took the gate).
            if (Paused || monotonicNs - Buffer.LastSnapshotNs < PeriodMs * 500_000L) return;
            SnapshotLocked(monotonicNs, wallNs);
        }
    }

    private void SnapshotLocked(long now, long wall)
    {
        // The period ends at the latest read (its stamps may move past the caller's, never back): see TakeSnapshot.
        if (Buffer.TakeSnapshot(ref now, ref wall, _delta, _flags, _intervals) == 0) return; // nothing read since the last period closed: no empty rows
        Snapshots++;
        ulong busyNs = 0;
        if (_procStat?.TryRead(out ulong busy, out _) == true)
        {
            busyNs = (busy - Math.Min(busy, _lastBusyTicks)) * (ulong)ProcStat.NsPerTick;
            _lastBusyTicks = busy;
        }
        var jobs = _jobArray;
        int nj = jobs.Length;
        int exclusive = -1;
        for (int j = 0; j < nj; j++)
        {
            _cpu[j] = jobs[j].Cpu.Sample(now, jobs[j].Steps);
            if (exclusive < 0 && jobs[j].Exclusive) exclusive = j;
        }
        // Then the scheduler's cgroups above them: a job cgroup removed in the period (Slurm, before the epilog's end) gets
        // its CPU time from there where that is exact (README "Attribution").
        _parents.Read(_jobCpus, _cpu.AsSpan(0, nj));
        var cpu = _cpu.AsSpan(0, nj);
        var shares = _shares.AsSpan(0, nj);
        ulong denominator = NodeSplit.Denominator(cpu, busyNs);
        bool raw = RawStorage;
        var channels = Buffer.Channels;

        lock (_spoolGate)
        {
            // Each spool takes the period's rows whole (SpoolWriter.Reserve): a buffer written in the middle of a split
            // would leave an interval that does not conserve in the file of a sampler killed before its next flush.
            // At most: node, every job, unattributed in the node's; share, node, unattributed and the steps in a job's.
            _node.Reserve(channels.Count * (nj + 2));
            for (int j = 0; j < nj; j++) jobs[j].Spool.Reserve(channels.Count * (3 + jobs[j].Steps.Count));
            for (int c = 0; c < channels.Count; c++)
            {
                var ch = channels[c];
                ulong e = _delta[c];
                var f = _flags[c];
                long interval = _intervals[c]; // the time its energy covers: the period's, or between NVML's own reads (TakeSnapshot)
                ulong unattributed;
                shares.Clear();
                if (ch.Resource.Kind == ResourceKind.Gpu)
                    // A GPU belongs, whole, to the job it is allocated to (or to an exclusive job); otherwise to nobody we know.
                    unattributed = GpuAttribution.Split(e, GpuAttribution.Owner(c, exclusive, _gpuOwns), shares);
                else if (exclusive >= 0)
                {
                    shares[exclusive] = e;
                    unattributed = 0;
                }
                else
                {
                    unattributed = NodeSplit.ByCpuTime(e, cpu, busyNs, shares);
                }

                if (!raw) _node.Append(SpoolSeries.NodeConsumer, c, ch, wall, interval, e, f);
                for (int j = 0; j < nj; j++) _node.Append(jobs[j].Consumer, c, ch, wall, interval, shares[j], ShareFlags(jobs[j], ch, f));
                _node.Append(SpoolSeries.UnattributedConsumer, c, ch, wall, interval, unattributed, f);

                for (int j = 0; j < nj; j++)
                {
                    var job = jobs[j];
                    var jf = ShareFlags(job, ch, f);
                    job.Append(job.Consumer, c, ch, wall, interval, shares[j], jf);
                    // Node-level series reach the user's file only when no one else shares the node (CVE-2020-8694).
                    if (job.Exclusive || nj == 1)
                    {
                        if (!raw) job.Append(SpoolSeries.NodeConsumer, c, ch, wall, interval, e, f);
                        job.Append(SpoolSeries.UnattributedConsumer, c, ch, wall, interval, unattributed, f);
                    }
                    // Steps: parts of the job's share by their own CPU time, same denominator (never added to the job).
                    if (ch.Resource.Kind == ResourceKind.Gpu || job.Exclusive) continue;
                    // A lost job cgroup's steps miss their CPU time since the read before, even where the job's share took it
                    // from a parent (flags=16: nothing there is per step): their parts of that period are flagged 8.
                    var sf = job.Cpu.Lost ? f | SpoolFlags.CgroupGone : jf;
                    foreach (var (step, stepNs) in job.Steps)
                        job.Append(job.StepConsumer(step), c, ch, wall, interval, NodeSplit.Part(e, stepNs, denominator), StepFlags(job.Cpu, step, sf));
                }
            }
            // The day's node file rolls after the split, never before: the raw reads of the period that straddles a UTC
            // midnight are in the old day's file (the tick appends to the open spool), so its split rows go there too
            // and each day's file conserves in every interval (README, node file).
            _node.Roll(wall);
        }
    }

    /// <summary>
    /// A job's share of a CPU-side counter in the period its cgroup was found gone after a read (<see cref="JobCpu.Lost"/>:
    /// <see cref="SpoolFlags.CgroupGone"/>, its CPU time since that read is missing; <see cref="SpoolFlags.FromParentCgroup"/>
    /// where it was taken from the scheduler's cgroup above it), or read again after its reads failed (the same cgroup:
    /// <see cref="SpoolFlags.ReadError"/>, it holds the CPU time of the periods it could not be read; a requeue's new
    /// cgroup is counted whole, with no flag: <see cref="JobCpu.Refound"/>), or read while whether it is still there could
    /// not be checked (<see cref="JobCpu.Unverified"/>: <see cref="SpoolFlags.ReadError"/>, not known exact), or looked up
    /// where the lookup could not tell whether it is there, or found after such lookups (<see cref="JobCpu.LookupNotKnown"/>:
    /// <see cref="SpoolFlags.ReadError"/>).
    /// </summary>
    private static SpoolFlags ShareFlags(NodeJob job, EnergyChannel ch, SpoolFlags f) =>
        job.Exclusive || ch.Resource.Kind == ResourceKind.Gpu ? f
        : job.Cpu.Refound || job.Cpu.Unverified || job.Cpu.LookupNotKnown ? f | SpoolFlags.ReadError
        : job.Cpu.FromParent ? f | SpoolFlags.FromParentCgroup
        : job.Cpu.Lost ? f | SpoolFlags.CgroupGone
        : f;

    /// <summary>
    /// A step's part: <paramref name="sf"/>, its job's; for a step whose own cgroup was found gone in the period
    /// (<see cref="JobCpu.StepGone"/>), with <see cref="SpoolFlags.CgroupGone"/>: its CPU time since its last read is missing;
    /// in a period whose steps' parts are not exact for a listing of the job's directory that failed
    /// (<see cref="JobCpu.StepsNotExact"/>), with <see cref="SpoolFlags.ReadError"/>.
    /// </summary>
    private static SpoolFlags StepFlags(JobCpu cpu, string step, SpoolFlags sf) =>
        (cpu.StepGone(step) ? sf | SpoolFlags.CgroupGone : sf) | (cpu.StepsNotExact ? SpoolFlags.ReadError : SpoolFlags.None);

    /// <summary>
    /// Raw storage: every read of the node's counters, to the node file and to the file of a job alone on the node (or
    /// exclusive). One lock per source read; nothing here depends on the number of jobs sharing the node (their
    /// shares are split at the snapshots).
    /// </summary>
    void IRawReadSink.OnReads(long wallNs, ReadOnlySpan<SpoolRecord> reads)
    {
        // The read's records, built once by the buffer (their Series is the channel's index in it), appended as one block
        // with the node spool's ids of the channels' node series (SeriesSpool.AppendNodeReads: an array, no lookup by
        // name per read). Once: a job alone or exclusive gets them from the node's spool at its end (NodeReadWindows).
        lock (_spoolGate)
        {
            _node.Open(wallNs).AppendNodeReads(reads, _channels);
            _nodeReads += reads.Length;
        }
    }

    public void Flush()
    {
        lock (_spoolGate)
        {
            _node.Flush();
            foreach (var job in _jobArray)
            {
                job.Spool.CheckDetached(); // its epilog took the spool over (hung sampler): dropped once its marker is there (Housekeep)
                job.Spool.Flush();
                if (job.Windows.Dirty) WriteWindows(job);
            }
        }
    }

    // ---------------------------------------------------------------- rate and scheduling (ISamplingPlan)

    /// <summary>Raw storage while the admin ([sampler] storage_period_ms = 0) or any registered job asked for it.</summary>
    public bool RawStorage => _rawStorage;

    /// <summary>The snapshot period: storage_period_ms in aggregated storage (each stored row is split), else attribution_period_ms.</summary>
    public int PeriodMs => _cfg.Sampler.StoragePeriodMs > 0 ? _cfg.Sampler.StoragePeriodMs : _cfg.Sampler.AttributionPeriodMs;

    public int FlushIntervalMs => _cfg.Sampler.FlushIntervalMs;

    /// <summary>
    /// Rate of the tick thread: the configured rates (rapl_hz caps RAPL) only while raw storage is wanted; otherwise
    /// only what keeps every counter's wraps unambiguous beyond what the snapshots themselves read (0 = no tick).
    /// </summary>
    public double TickHz
    {
        get
        {
            var fast = _sources.Slots.Where(s => !s.OwnThread).ToArray();
            if (fast.Length == 0) return 0;
            if (RawStorage) return fast.Max(SlotHz);
            double wrap = fast.Max(s => s.WrapSafeHz(_cfg.Sampler.MaxPowerW));
            return wrap > 1000.0 / PeriodMs ? Math.Min(wrap, fast.Max(SlotHz)) : 0;
        }
    }

    /// <summary>A fast source's raw-storage rate: RAPL at [sampler] rapl_hz (the admin's cap, settable while sampling).</summary>
    public double SlotHz(SourceSlot slot) => slot.Source.Name == "rapl" ? Math.Min(slot.Hz, _cfg.Sampler.RaplHz) : slot.Hz;

    public bool FifoTick => RawStorage && _cfg.Sampler.TickScheduling == "fifo";

    /// <summary>
    /// Job liveness (no epilog came) and the linger; false = stop the sampler. Nothing here reads a file per job: a job's
    /// finalized marker is read only after another process signalled a finalization (<see cref="FinalizedElsewhere"/>).
    /// </summary>
    public bool Housekeep(long now)
    {
        // The signal first, then the registry: a job registered after this read is checked by Register itself (its
        // second Late), one registered before it is in the array read below.
        bool finalizedElsewhere = _finalizedElsewhere.Changed();
        NodeJob[] jobs;
        lock (_gate) jobs = _jobArray;
        if (CompactAfterJobChanges) CompactOnceSettled(jobs);
        if (RetryDayExports && now >= _nextDayExportsNs && InBackground(RetryBit.Days, "node-file-retry", "node files: export retry", RetryDayExportsNow))
            _nextDayExportsNs = now + DayExportsEveryNs;
        foreach (var job in jobs)
        {
            if (job.Ending) continue;
            if ((finalizedElsewhere || job.Spool.Detached) && ReadMarker(job) is not null)
            {
                // Its epilog gave up waiting (hung sampler) and finalized it from the spool: drop it, do not finalize twice.
                job.Ending = true;
                Drop(job.Registration.Key, now);
                Log.Warn($"job {job.Registration.Job.JobId}: finalized by its epilog meanwhile; no longer sampled");
                continue;
            }
            if (finalizedElsewhere && WithdrawnAt(job.Registration, _cfg) is { } withdrawn)
            {
                // Applied while its prolog waited, answered after it gave up: the prolog said it is not measured, so it is
                // not. Its state goes too (no epilog nor restarted sampler finalizes it), unless a finalizer holds it.
                job.Ending = true;
                Drop(job.Registration.Key, now);
                bool removed;
                try { removed = JobStateCleanup.TryRemoveIdle(job.Directory, _cfg.Paths.ProcfsRoot); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { removed = false; Log.Warn($"job {job.Registration.Job.JobId}: {job.Directory} not removed: {e.Message}"); }
                Log.Warn($"job {job.Registration.Job.JobId}: its prolog withdrew the registration at {withdrawn:yyyy-MM-ddTHH:mm:ss.fff}Z (it gave up waiting for the answer); no longer sampled{(removed ? ", its state removed" : "")}");
                continue;
            }
            string? why = Watch(job, now);
            if (why is null) continue;
            job.Ending = true;
            Log.Warn($"job {job.Registration.Job.JobId}: {why}; finalizing as partial");
            EndInBackground(job, why);
        }
        lock (_gate)
        {
            bool go = _jobs.Count > 0 || Volatile.Read(ref _finalizing) > 0 || (StopWhenEmpty ? !_hadJob : (now - _emptySinceNs) / 1e9 < Linger);
            if (!go) _stopped = true; // decided under the registry lock: a registration is either in, or refused and retried
            return go;
        }
    }

    /// <summary>
    /// Ends a job no epilog ended, on its own thread. A method of its own: a lambda in the loop above made the compiler
    /// allocate its captured variables at every iteration, for every job each second, whether a thread started or not.
    /// </summary>
    private void EndInBackground(NodeJob job, string why)
    {
        Interlocked.Increment(ref _finalizing); // until End has taken over the count
        var t = new Thread(() =>
        {
            try { End(job.Registration.Key, complete: false, why, Clock.MonotonicNs(), Clock.WallNs()); }
            catch (Exception) { /* logged by End */ }
            finally { Interlocked.Decrement(ref _finalizing); }
        }) { Name = "finalize", IsBackground = false };
        t.Start();
    }

    /// <summary>
    /// Once the job set has stayed the same for one housekeeping round after a change (a burst of prologs or epilogs is
    /// over), one compacting collection gives back what the registrations and ends left (README Performance, peak
    /// RSS). Never per period: at most once per change of the job set.
    /// </summary>
    private void CompactOnceSettled(NodeJob[] jobs)
    {
        if (ReferenceEquals(jobs, _compacted)) return;
        if (ReferenceEquals(jobs, _settling))
        {
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            Compactions++;
            _compacted = jobs;
        }
        _settling = jobs;
    }

    private NodeJob[]? _settling, _compacted;

    /// <summary>The daemon: compact the heap once a burst of job changes is over (<see cref="CompactOnceSettled"/>).</summary>
    public bool CompactAfterJobChanges { get; set; }

    /// <summary>Collections <see cref="CompactOnceSettled"/> ran.</summary>
    public long Compactions { get; private set; }

    private string? ReadMarker(NodeJob job)
    {
        Interlocked.Increment(ref _markerReads);
        return JobFinalizer.FinalizedLine(job.Directory, job.Registration.Job.RunId);
    }

    /// <summary>linger_s after a job; a fresh sampler waits at least 10 s for the job whose prolog started it.</summary>
    private double Linger => _hadJob ? _cfg.Sampler.LingerS : Math.Max(_cfg.Sampler.LingerS, 10);

    /// <summary>No more registrations (the sampler is closing).</summary>
    public void Stop()
    {
        lock (_gate) _stopped = true;
    }

    private void Drop(string key, long now)
    {
        lock (_gate)
        {
            if (!_jobs.TryGetValue(key, out var job)) return;
            // At raw storage the period closes first, as at End: dropping the only raw job switches raw storage off, and a
            // job left alone gets the node's reads from here on; either mid-period broke its conservation.
            bool boundary = RawStorage && !Paused;
            using (ClosePeriodIf(boundary, now, Clock.WallNs()))
            {
                _jobs.Remove(key);
                Rebuild();
            }
            lock (_spoolGate) job.Spool.Dispose();
            job.Cpu.Dispose();
            if (_jobs.Count == 0) _emptySinceNs = now;
        }
    }

    private string? Watch(NodeJob job, long now)
    {
        double aliveS = (now - job.RegisteredNs) / 1e9;
        if (aliveS > _cfg.Sampler.MaxLifetimeH * 3600) return $"reached the maximum lifetime of {_cfg.Sampler.MaxLifetimeH} h";
        if (job.Registration.Owner is { } owner && !owner.IsAlive())
            return $"the exec process (pid {owner.Pid}) that ran the command is gone (crash or kill) and did not end the job";
        if (job.Exclusive) return null;
        if (job.Cpu.LastSeenNs is { } seen)
        {
            double goneS = (now - seen) / 1e9;
            if (goneS > _cfg.Sampler.JobGoneGraceS) return $"job cgroup gone for {goneS:0} s and no epilog ended the job";
        }
        else if (aliveS > _cfg.Sampler.CgroupWaitS)
        {
            return $"job cgroup not found within {_cfg.Sampler.CgroupWaitS} s: check the scheduler's cgroup plugin or set attribution = \"exclusive\"";
        }
        return null;
    }

    /// <summary>
    /// At exit: the last period, every spool flushed, the day's node file written (waited for); jobs stay registered
    /// (recovered by the next sampler, or finalized by their epilog).
    /// </summary>
    /// <param name="closed">Called once every spool is closed and the day handed to its export, before that export is
    /// waited for: the daemon releases the node lock there (RunDaemon).</param>
    public void Close(long monotonicNs, long wallNs, Action? closed = null)
    {
        Thread[] exports;
        lock (_gate)
        {
            if (!Paused) SnapshotLocked(monotonicNs, wallNs);
            lock (_spoolGate)
            {
                var jobs = _jobArray;
                _jobs.Clear();
                Rebuild(); // closes their windows of node reads while their spools are open (WriteWindows checks them)
                foreach (var job in jobs) { job.Spool.Dispose(); job.Cpu.Dispose(); }
                _parents.Dispose();
                _node.Close();
                exports = [.. _exports];
            }
        }
        closed?.Invoke();
        foreach (var t in exports) t.Join();
    }

    private readonly List<Thread> _exports = new(); // under _spoolGate
    private readonly HashSet<string> _exporting = new(StringComparer.Ordinal); // days a thread of this process exports (locked)

    /// <summary>
    /// The node daemon (RunDaemon) exports again, on a thread of its own (counted as a finalization: the sampler does not
    /// exit under it), every closed day whose node file does not hold all of its spool (an export that failed, or a
    /// sampler killed before its day's export): at its first housekeeping and every <see cref="DayExportsEveryNs"/>, one
    /// day after the other, so that they are stored and then removed by the rule of JobStateCleanup (README, "Data:
    /// spool, Parquet, database").
    /// </summary>
    public bool RetryDayExports { get; init; }

    /// <summary>How often the daemon looks for closed days to export again (an hour).</summary>
    public const long DayExportsEveryNs = 3_600_000_000_000;
    private long _nextDayExportsNs; // monotonic; 0: the first housekeeping looks

    /// <summary>Exports the closed days not exported, one after the other (a housekeeping that finds it still running tries again at the next one).</summary>
    private void RetryDayExportsNow()
    {
        foreach (string dir in ClosedDaysNotExported()) ExportSaidOnce(dir);
    }

    /// <summary>The node's days before today (UTC), not open here, whose node file does not hold all of them (<see cref="NodeSpool.ExportedTo"/>),
    /// and whose lock no other process holds: a day being exported (the closing sampler's export, just after UTC midnight)
    /// is finished by its holder; an export here would wait for it, then say a failure that is none.</summary>
    private List<string> ClosedDaysNotExported()
    {
        string? open;
        lock (_spoolGate) open = _node.CurrentDirectory;
        var today = DateOnly.FromDateTime(DateTime.UtcNow);
        var days = new List<string>();
        foreach (var dir in new DirectoryInfo(NodeSpool.Root(_cfg)).EnumerateDirectories())
            if (dir.LinkTarget is null && NodeSpool.IsDay(dir.Name, out var day) && day < today && dir.FullName != open && NodeSpool.ExportedTo(dir.FullName) is null && !LockHeld(dir.FullName))
                days.Add(dir.FullName);
        days.Sort(StringComparer.Ordinal);
        return days;

        static bool LockHeld(string day)
        {
            using var probe = FinalizationLock.Acquire(day, TimeSpan.Zero, out bool busy); // the lock NodeSpool.Export holds
            return busy;
        }
    }

    /// <summary>
    /// Exports a closed day (<see cref="IJobFinalization.ExportNodeDay"/>), its failures said once per episode
    /// (<see cref="NodeSpool.ExportFailedFile"/>). A day another thread of this process is exporting is left to it.
    /// </summary>
    private void ExportSaidOnce(string dir)
    {
        lock (_exporting) if (!_exporting.Add(dir)) return;
        string mark = Path.Combine(dir, NodeSpool.ExportFailedFile);
        try
        {
            // The export itself says the failed attempts and removes the mark, under the day's lock: read here, after,
            // the day could be gone already (another job's finalization prunes an exported day).
            _finalization.ExportNodeDay(dir);
        }
        catch (Exception e)
        {
            string why = ErrorText.Describe(e);
            bool first = !File.Exists(mark);
            try { File.AppendAllText(mark, $"{DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture)} {why}\n"); }
            catch (Exception m) when (m is IOException or UnauthorizedAccessException) { } // the day is gone, or the state dir full: said again next time
            if (first) Log.Error($"node file of {dir}: export failed: {why}; the spool stays in {dir}{(RetryDayExports ? " and the node sampler retries its export every hour (said once until it works)" : "")}");
        }
        finally
        {
            lock (_exporting) _exporting.Remove(dir);
        }
    }

    /// <summary>
    /// A day of the node's spool was closed (the UTC day rolled at a snapshot, or the sampler exits): its Parquet file is
    /// written on a thread of its own, by the finalization (the daemon's <c>finalize-job</c> child), never under the
    /// gates: a day of rows is seconds of work (minutes at raw storage), during which the tick would wait for its
    /// spool lock and the snapshots for the registry's. Called under <see cref="_spoolGate"/>.
    /// </summary>
    private void ExportDay(string dir)
    {
        _exports.RemoveAll(t => !t.IsAlive);
        var export = new Thread(() => ExportSaidOnce(dir)) { Name = "node-file", IsBackground = true };
        export.Start();
        _exports.Add(export);
    }

    // ---------------------------------------------------------------- control

    public string Status(Sampler? sampler)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        NodeJob[] jobs;
        lock (_gate) jobs = _jobArray;
        sb.Append("state: ").Append(Paused ? "paused" : "sampling").Append('\n');
        sb.Append("jobs: ").Append(jobs.Length).Append('\n');
        sb.Append("storage: ").Append(RawStorage ? "raw (every read)" : $"aggregated per {PeriodMs} ms").Append('\n');
        sb.Append("tick_target_hz: ").Append(TickHz.ToString("0.###", inv)).Append(FifoTick ? " (SCHED_FIFO)" : "").Append('\n');
        if (sampler is not null)
        {
            sb.Append("tick_achieved_hz: ").Append(sampler.AchievedHz.ToString("0.##", inv)).Append('\n');
            sb.Append("lateness_us: p50 ").Append(sampler.Lateness.PercentileUs(50).ToString(inv))
              .Append(" p99 ").Append(sampler.Lateness.PercentileUs(99).ToString(inv))
              .Append(" max ").Append((sampler.Lateness.MaxNs / 1000).ToString(inv)).Append('\n');
            sb.Append("missed_ticks: ").Append(sampler.MissedTicks.ToString(inv)).Append('\n');
            if (sampler.FirstSampleNs > 0 && OriginNs > 0)
                sb.Append("first_sample_ms: ").Append(((sampler.FirstSampleNs - OriginNs) / 1e6).ToString("0.0", inv)).Append('\n');
        }
        sb.Append("snapshots: ").Append(Snapshots.ToString(inv)).Append('\n');
        sb.Append("sources: ").Append(string.Join(", ", _sources.Slots.Select(s => $"{s.Source.Name} ({s.Source.Channels.Count} channels{(s.OwnThread ? $", own thread at {s.Hz:0.##} Hz" : "")})"))).Append('\n');
        sb.Append("read_errors: ").Append(Interlocked.Read(ref Buffer.ReadErrors).ToString(inv)).Append('\n');
        sb.Append("last_error: ").Append(LastError ?? "none").Append('\n');
        // What the managed heap holds and keeps (README Performance, peak RSS): live after the last GC, committed, and
        // allocated since the start, with the collections so far.
        var gc = GC.GetGCMemoryInfo();
        sb.Append("gc_kb: heap ").Append((gc.HeapSizeBytes / 1024).ToString(inv))
          .Append(" committed ").Append((gc.TotalCommittedBytes / 1024).ToString(inv))
          .Append(" allocated ").Append((GC.GetTotalAllocatedBytes() / 1024).ToString(inv))
          .Append(" collections ").Append(GC.CollectionCount(0).ToString(inv)).Append('/')
          .Append(GC.CollectionCount(1).ToString(inv)).Append('/').Append(GC.CollectionCount(2).ToString(inv))
          // Every collection stops the tick thread too: the total says what they cost it.
          .Append(" pause_ms ").Append(GC.GetTotalPauseDuration().TotalMilliseconds.ToString("0.000", inv)).Append('\n');
        return sb.ToString();
    }

    /// <summary>Records the job's spool holds so far (its Parquet rows); 0 for a job not registered.</summary>
    public long RecordsWritten(string key)
    {
        lock (_gate) return _jobs.TryGetValue(key, out var job) ? job.Spool.RecordsWritten + job.Windows.Reads(Volatile.Read(ref _nodeReads)) : 0;
    }

    public string Jobs()
    {
        NodeJob[] jobs;
        lock (_gate) jobs = _jobArray;
        var sb = new StringBuilder();
        foreach (var j in jobs)
        {
            var r = j.Registration;
            sb.Append(r.Job.Scheduler).Append(' ').Append(r.Job.JobId).Append(" user=").Append(r.Job.User)
              .Append(" uid=").Append(r.Job.Uid).Append(" mode=").Append(j.Exclusive ? "exclusive" : "cgroup")
              .Append(r.Raw ? " raw" : "").Append(j.Recovered ? " recovered" : "")
              .Append(j.Cpu.LastSeenNs is null && !j.Exclusive ? " cgroup=not-found" : "")
              .Append(" records=").Append(j.Spool.RecordsWritten + j.Windows.Reads(Volatile.Read(ref _nodeReads))).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>
    /// ctl pause: the open period closes here, then no reads (the buffer refuses them, a tick's that had not seen the pause
    /// too: <see cref="MeasurementBuffer.Paused"/>) and no periods until <see cref="Resume"/>. The period open while paused
    /// has no read before the resume, so what changes meanwhile (a job registered, ended or dropped, raw
    /// storage switched on or off by them or by <see cref="Set"/>) changes it at its start: each read counts once, in its
    /// raw record or in its period's node row, and every interval conserves. Left open, the period's reads before the
    /// pause were stored under one storage and closed under the other (stored nowhere, or counted twice).
    /// </summary>
    public void Pause(long monotonicNs, long wallNs)
    {
        lock (_gate)
        {
            if (Paused) return;
            using (ClosePeriodIf(true, monotonicNs, wallNs)) Buffer.Paused = true; // no read between the period's end and the pause
        }
    }

    /// <summary>ctl resume: the reads go on (the first period after the pause carries its energy).</summary>
    public void Resume()
    {
        lock (_gate) Buffer.Paused = false;
    }

    /// <summary>Keys <c>ctl set</c> may change while sampling, validated like the config file.</summary>
    public static readonly string[] SettableKeys =
        ["rapl_hz", "storage_period_ms", "attribution_period_ms", "flush_interval_ms", "linger_s", "tick_scheduling", "max_power_w"];

    /// <summary>Applies <c>KEY=VALUE</c> to the running sampler; null when applied, else the error sentence.</summary>
    public string? Set(string key, string value)
    {
        var s = _cfg.Sampler;
        var inv = CultureInfo.InvariantCulture;
        bool num = double.TryParse(value, NumberStyles.Float, inv, out double d);
        bool integer = int.TryParse(value, NumberStyles.Integer, inv, out int i);
        lock (_gate)
        {
            var before = (s.RaplHz, s.StoragePeriodMs, s.AttributionPeriodMs, s.FlushIntervalMs, s.LingerS, s.TickScheduling, s.MaxPowerW);
            switch (key)
            {
                case "rapl_hz" when num: s.RaplHz = d; break;
                case "storage_period_ms" when integer: s.StoragePeriodMs = i; break;
                case "attribution_period_ms" when integer: s.AttributionPeriodMs = i; break;
                case "flush_interval_ms" when integer: s.FlushIntervalMs = i; break;
                case "linger_s" when num: s.LingerS = d; break;
                case "tick_scheduling": s.TickScheduling = value; break;
                case "max_power_w" when num: s.MaxPowerW = d; break;
                default:
                    return Array.IndexOf(SettableKeys, key) < 0
                        ? $"{key} cannot be changed while sampling; use one of {string.Join(", ", SettableKeys)}"
                        : $"{key}: {SchedulerInput.Quote(value)} is not a {(key.EndsWith("_ms") ? "whole number" : "number")}";
            }
            string? refused = null;
            try { ConfigLoader.Validate(_cfg, "ctl set"); }
            catch (ConfigException e) { refused = e.Message; }
            bool switchesRaw = WantsRawStorage != _rawStorage;
            if (refused is not null)
            {
                (s.RaplHz, s.StoragePeriodMs, s.AttributionPeriodMs, s.FlushIntervalMs, s.LingerS, s.TickScheduling, s.MaxPowerW) = before;
                return refused;
            }
            // max_power_w bounds every counter's next reading (README "Implausible readings"), not only the tick's rate.
            if (s.MaxPowerW != before.MaxPowerW)
                foreach (var slot in Buffer.Slots)
                    if (!slot.OwnBound) slot.SetMaxPower(s.MaxPowerW);
            // Raw storage switched on or off: the period closes first, under the old sink, as at a registration that
            // switches it (README "Raw storage on request"): each read then counts once, in its raw record or in the
            // period's node row (raw reads up to the switch, then the node row of the whole period, counted them twice).
            long now = Clock.MonotonicNs(), wall = Clock.WallNs();
            // Paused, the pause closed it: the open period has no read yet (Pause).
            using (ClosePeriodIf(switchesRaw && !Paused, now, wall)) UpdateRawSink(wall);
            RateChanged?.Invoke();
            return null;
        }
    }

    private static string Join(string a, string b) => a.Length == 0 ? b : $"{a}; {b}";

    public void Dispose()
    {
        _procStat?.Dispose();
        _finalizedElsewhere.Dispose();
    }

    /// <summary>A registered job: its CPU tracker, its spool, which GPU channels it holds.</summary>
    private sealed class NodeJob(JobRegistration registration, bool exclusive, bool exclusiveWhenAlone, JobCpu cpu, SeriesSpool spool, bool[] gpuChannels, long registeredNs, bool recovered)
    {
        public JobRegistration Registration { get; } = registration;
        /// <summary>Charged the whole node in the current periods (set by Rebuild: fixed, or an exec alone on the node).</summary>
        public bool Exclusive { get; set; } = exclusive;
        public bool FixedExclusive { get; } = exclusive;
        public bool ExclusiveWhenAlone { get; } = exclusiveWhenAlone;
        /// <summary>An exec that has shared the node at least once (its file is relabelled then, once).</summary>
        public bool Shared { get; set; }
        public JobCpu Cpu { get; } = cpu;
        public SeriesSpool Spool { get; } = spool;
        public bool[] GpuChannels { get; } = gpuChannels;
        public long RegisteredNs { get; } = registeredNs;
        public bool Recovered { get; } = recovered;
        public string Consumer { get; } = registration.Job.Consumer;
        public string Directory => Spool.Directory;
        public List<(string Step, ulong Ns)> Steps { get; } = new();
        /// <summary>Its windows of the node's raw reads (<see cref="NodeReadWindows"/>).</summary>
        public NodeReadWindows Windows { get; set; } = new();
        public bool WindowsWarned { get; set; }
        public volatile bool Ending;
        private readonly Dictionary<string, string> _stepConsumers = new(StringComparer.Ordinal);

        /// <summary>The consumer name of one of the job's steps, made once per step (not per period and channel).</summary>
        public string StepConsumer(string step)
        {
            if (!_stepConsumers.TryGetValue(step, out string? name))
                _stepConsumers[step] = name = $"step:{Registration.Job.JobId}.{step}";
            return name;
        }

        /// <param name="channel">The channel's index in the node's measurement buffer.</param>
        public void Append(string consumer, int channel, EnergyChannel ch, long wall, long interval, ulong value, SpoolFlags flags) =>
            Spool.Append(Spool.Series(consumer, channel, ch), wall, interval, value, flags);
    }

    /// <summary>
    /// Where the job set or the raw sink changes mid-period (a registration, a drop, a raw switch by ctl set): when
    /// <paramref name="close"/>, every gate held and the period closed here, so the change starts a new period with no
    /// read between; else nothing held.
    /// </summary>
    private SlotsHeld ClosePeriodIf(bool close, long monotonicNs, long wallNs)
    {
        if (!close) return default;
        var held = new SlotsHeld(Buffer.Slots);
        try { SnapshotLocked(monotonicNs, wallNs); }
        catch
        {
            held.Dispose();
            throw;
        }
        return held;
    }

    /// <summary>Every source's gate held (in slot order, as the readers take them): no read runs while the job set changes.</summary>
    private readonly struct SlotsHeld : IDisposable
    {
        private readonly IReadOnlyList<SourceSlot>? _slots;

        public SlotsHeld(IReadOnlyList<SourceSlot> slots)
        {
            _slots = slots;
            foreach (var slot in slots) slot.Gate.Enter();
        }

        public void Dispose()
        {
            if (_slots is null) return;
            for (int i = _slots.Count - 1; i >= 0; i--) _slots[i].Gate.Exit();
        }
    }
}
