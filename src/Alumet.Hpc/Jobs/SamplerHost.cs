using System.Text.Json;
using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Jobs;

/// <param name="Exclusive">Charge the whole node to the job (exclusive allocations, <c>exec</c>).</param>
/// <param name="JobGpus">Resource ids (PCI bus ids) of the GPUs allocated to the job.</param>
public sealed record SamplerRequest(JobIdentity Job, bool Exclusive, IJobCgroupLocator? Locator, IReadOnlySet<string> JobGpus);

/// <summary>
/// One job's sampler, in this process: sources, attribution, spool, watchdog; <see cref="Run"/> samples until
/// cancelled (SIGTERM from the epilog, the measured command's exit) or until a watchdog rule ends it, then
/// finalizes the job (Parquet + accounting row).
/// </summary>
public sealed class SamplerHost : IDisposable
{
    private readonly AlumetConfig _cfg;
    private readonly SamplerRequest _request;
    private readonly SourceSet _sources;
    private readonly JobAttribution _attribution;
    private readonly long _startNs;

    public Sampler Sampler { get; }
    public string StateDirectory { get; }
    public SourceSet Sources => _sources;

    /// <summary>Monotonic ns the benchmark harness spawned us at (env ALUMET_BENCH_T0_NS), for startup-to-first-sample.</summary>
    public long? SpawnNs { get; init; }

    public SamplerHost(AlumetConfig cfg, SamplerRequest request, SourceSet sources)
    {
        _cfg = cfg;
        _request = request;
        _sources = sources;
        _startNs = Clock.MonotonicNs();
        var job = request.Job;
        StateDirectory = job.StateDirectory(cfg.Paths.StateDir);
        Directory.CreateDirectory(StateDirectory);
        foreach (string stale in new[] { SpoolWriter.RecordsFile, "stats.json" })
            File.Delete(Path.Combine(StateDirectory, stale)); // a requeued job id starts a fresh spool
        JobFinalizer.ForgetFinalized(StateDirectory);

        _attribution = new JobAttribution(job, request.Locator, cfg.Paths.ProcfsRoot, request.Exclusive, request.JobGpus);
        long startWallNs = Clock.WallNs();
        var meta = new SpoolMeta
        {
            ToolVersion = ToolInfo.Version,
            Scheduler = job.Scheduler,
            Cluster = job.Cluster,
            JobId = job.JobId,
            RunId = job.RunId.Length > 0 ? job.RunId : RunId.FromStartNs(startWallNs),
            JobName = job.JobName,
            User = job.User,
            Uid = job.Uid,
            Node = job.Node,
            StartWallNs = startWallNs,
            Perimeter = sources.Perimeter + (_attribution.Exclusive
                ? " | Attribution: exclusive, the whole node is charged to the job."
                : " | Attribution: node energy × job cgroup CPU time / max(node busy CPU time, all jobs' CPU time); GPUs whole to the job they are allocated to; the rest is unattributed."),
            EstimateModel = sources.EstimateModel,
        };
        var settings = new SamplerSettings(cfg.Sampler.StoragePeriodMs, cfg.Sampler.AttributionPeriodMs, cfg.Sampler.FlushIntervalMs, cfg.Sampler.MaxPowerW,
            FifoTick: cfg.Sampler.TickScheduling == "fifo");
        Sampler = new Sampler(settings, sources.Slots, _attribution, meta, StateDirectory, _startNs) { Watchdog = Watch };
    }

    private (StopReason, string)? Watch(long nowNs)
    {
        double aliveS = (nowNs - _startNs) / 1e9;
        if (aliveS > _cfg.Sampler.MaxLifetimeH * 3600)
            return (StopReason.MaxLifetime, $"reached the maximum lifetime of {_cfg.Sampler.MaxLifetimeH} h");
        if (_attribution.Exclusive) return null;
        if (_attribution.JobLastSeenNs is { } seen)
        {
            double goneS = (nowNs - seen) / 1e9;
            if (goneS > _cfg.Sampler.JobGoneGraceS)
                return (StopReason.JobGone, $"job cgroup gone for {goneS:0} s and no epilog stopped the sampler");
        }
        else if (aliveS > _cfg.Sampler.CgroupWaitS)
        {
            return (StopReason.CgroupNeverFound, $"job cgroup not found within {_cfg.Sampler.CgroupWaitS} s: check the scheduler's cgroup plugin or set attribution = \"exclusive\"");
        }
        return null;
    }

    /// <summary>Samples until cancelled or stopped by the watchdog, then finalizes. Never throws for a finalization failure: logs it.</summary>
    public JobFinalizer.Outcome? Run(CancellationToken token)
    {
        Sampler.Run(token);
        WriteStats();
        var reason = Sampler.StopReason ?? StopReason.Signal;
        string detail = reason.IsComplete() ? "" : Sampler.StopDetail ?? reason.ToString();
        // A full state dir cost the time resolution (or, if it never freed, the last records): the row says so.
        bool complete = reason.IsComplete() && Sampler.SpoolWriteFailures.Count == 0;
        detail = string.Join("; ", new[] { detail }.Concat(Sampler.SpoolWriteFailures).Where(x => x.Length > 0));
        try
        {
            var outcome = JobFinalizer.Finalize(StateDirectory, _cfg, complete, detail);
            Log.Info($"job {_request.Job.JobId}: finalized {outcome.Status}{(outcome.Reason.Length > 0 ? " (" + outcome.Reason + ")" : "")}, {outcome.Record?.TotalEnergyJ:0.###} J, {outcome.ParquetPath}; {outcome.Delivery}");
            // The epilog has its answer (the finalized line); a queued row is retried here, after the job.
            if (!outcome.Stored) Outbox.RetryInBackground(_cfg, $"job {_request.Job.JobId}");
            return outcome;
        }
        catch (Exception e)
        {
            Log.Error($"job {_request.Job.JobId}: finalization failed: {e.Message}; spool kept in {StateDirectory}");
            return null;
        }
    }

    private void WriteStats()
    {
        var s = Sampler;
        double duration = (Clock.MonotonicNs() - _startNs) / 1e9;
        double targetHz = _sources.Slots.Where(x => !x.OwnThread).Select(x => x.Hz).DefaultIfEmpty(0).Max();
        var stats = new SamplerStats(targetHz, s.Ticks, s.MissedTicks, duration, duration > 0 ? s.Ticks / duration : 0,
            s.Lateness.PercentileUs(50), s.Lateness.PercentileUs(99), s.Lateness.MaxNs / 1000.0,
            s.Lateness.Count > 0 ? s.Lateness.SumNs / s.Lateness.Count / 1000.0 : 0,
            SpawnNs is { } t0 && s.FirstSampleNs > 0 ? (s.FirstSampleNs - t0) / 1e6 : -1,
            s.RecordsWritten);
        try { File.WriteAllText(Path.Combine(StateDirectory, "stats.json"), JsonSerializer.Serialize(stats, SamplerStatsJsonContext.Default.SamplerStats)); }
        catch (IOException e) { Log.Warn($"could not write stats.json: {e.Message}"); }
    }

    public void Dispose()
    {
        _attribution.Dispose();
        _sources.Dispose();
    }
}
