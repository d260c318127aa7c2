using System.CommandLine;
using System.Runtime.InteropServices;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Schedulers;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc sample</c>: a sampler for one job in the foreground (the node sampler's pipeline with that job
/// alone registered): runs until SIGTERM or a liveness rule, then finalizes. Hooks use <c>node-sampler</c>.
/// </summary>
public static class SampleCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var scheduler = new Option<string>("--scheduler") { Description = "slurm, oar or exec", Required = true };
        scheduler.AcceptOnlyFromAmong(Schedulers.SchedulerNames.All);
        var cluster = new Option<string>("--cluster") { Description = "cluster name", DefaultValueFactory = _ => "local" };
        var jobId = new Option<string>("--job-id") { Description = "numeric job id", Required = true };
        var user = new Option<string>("--user") { Description = "job owner's user name", Required = true };
        var uid = new Option<int>("--uid") { Description = "job owner's uid", Required = true };
        var node = new Option<string>("--node") { Description = "node name (default: host name)" };
        var gpus = new Option<string?>("--gpus") { Description = "the job's GPUs: /dev/nvidiaN numbers, ranges, GPU-/MIG- UUIDs or PCI bus ids, e.g. 0,2" };
        var sluid = new Option<string?>("--sluid") { Description = "Slurm >= 25.11 SLUID (names the cgroup from 26.05)" };
        var runId = new Option<string?>("--run-id") { Description = "which run of the job: the SLUID, else the start time yyyyMMddTHHmmssfffZ (default: now)" };
        var exclusive = new Option<bool>("--exclusive") { Description = "charge the whole node to the job" };
        var detach = new Option<bool>("--detach") { Description = "leave the caller's session, cgroups and stdio (used by hooks)" };
        var jobName = new Option<string?>("--job-name") { Description = "the job's name as the scheduler gave it (recorded in the accounting row)" };

        var cmd = new Command("sample", "Run one job's sampler in the foreground until SIGTERM, then write its Parquet file and accounting row")
        {
            config, scheduler, cluster, jobId, user, uid, node, gpus, sluid, runId, exclusive, detach, jobName,
        };
        cmd.SetAction(r => Run(
            r.GetValue(config), r.GetValue(scheduler)!, r.GetValue(cluster)!, r.GetValue(jobId)!, r.GetValue(user)!, r.GetValue(uid),
            r.GetValue(node) ?? Environment.MachineName, r.GetValue(gpus), r.GetValue(sluid), r.GetValue(runId), r.GetValue(exclusive), r.GetValue(detach),
            r.GetValue(jobName)));
        return cmd;
    }

    private static int Run(string? configPath, string scheduler, string cluster, string jobId, string user, int uid,
                           string node, string? gpus, string? sluid, string? runId, bool exclusive, bool detach,
                           string? jobName)
    {
        string? bad =
            !SchedulerInput.IsJobId(jobId) ? $"--job-id {SchedulerInput.Quote(jobId)} is not a numeric job id" :
            !SchedulerInput.IsUserName(user) ? $"--user {SchedulerInput.Quote(user)} is not a valid user name" :
            !SchedulerInput.IsName(node) ? $"--node {SchedulerInput.Quote(node)} is not a valid node name" :
            !SchedulerInput.IsName(cluster) ? $"--cluster {SchedulerInput.Quote(cluster)} is not a valid cluster name" :
            uid < 0 ? $"--uid {uid} is negative" :
            runId is not null && !RunId.IsValid(runId) ? $"--run-id {SchedulerInput.Quote(runId)} is not a run id (1-64 letters and digits)" :
            gpus is not null && !Sources.Nvml.GpuAllocation.TryParse(gpus, out _, out string? gpuError) ? $"--gpus {SchedulerInput.Quote(gpus)} is not a GPU list: {gpuError}" :
            null;
        if (bad is not null)
        {
            Console.Error.WriteLine($"alumet-hpc: sample: {bad}");
            return 2;
        }

        if (CommonOptions.LoadSystem(configPath) is not { } cfg) return 2;
        Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: detach, stderr: !detach);

        var job = new JobIdentity(scheduler, cluster, jobId, user, uid, node, runId ?? RunId.Of(sluid, DateTime.UtcNow))
        {
            JobName = JobIdentity.RecordedName(jobName),
        };
        string stateDir = job.StateDirectory(cfg.Paths.StateDir);
        if (detach) SamplerProcessSetup.Detach(cfg.Paths.CgroupRoot);
        try
        {
            Directory.CreateDirectory(stateDir);

            using var sources = SourceFactory.Create(cfg);
            if (sources.Empty)
            {
                foreach (string p in sources.Problems) Log.Info($"job {jobId}: {p}");
                JobFinalizer.RecordNotMeasured(job, cfg, "no energy source on this node: " + string.Join("; ", sources.Problems));
                return 0;
            }
            var allocation = Sources.Nvml.GpuAllocation.Parse(gpus); // validated above; the registration carries its canonical list
            var reg = new JobRegistration(job, allocation.IsEmpty ? null : allocation.List, sluid, exclusive, Raw: false, Clock.WallNs());
            using var cts = new CancellationTokenSource();
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
            using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
            // Logged once the counters are read: the job's energy counts from that read, the log lines can wait.
            NodeSamplerHost.RunOneJob(cfg, sources, reg, cts.Token, BenchSpawnNs(), primed: () =>
            {
                foreach (string p in sources.Problems) Log.Info($"job {jobId}: {p}");
                Log.Info($"job {jobId}: sampling ({sources.Perimeter})");
            });
            return 0;
        }
        catch (Exception e) when (e is MissingHardwareException or IOException or UnauthorizedAccessException or ArgumentException or InvalidDataException)
        {
            Log.Error($"job {jobId}: sampler failed: {e.Message}");
            try { JobFinalizer.RecordNotMeasured(job, cfg, $"sampler failed to start: {e.Message}"); }
            catch (Exception inner) { Log.Error($"job {jobId}: could not record the failure: {inner.Message}"); }
            return 1;
        }
    }

    internal static long? BenchSpawnNs() =>
        long.TryParse(Environment.GetEnvironmentVariable("ALUMET_BENCH_T0_NS"), out long t) ? t : null;
}
