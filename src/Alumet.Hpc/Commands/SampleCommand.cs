using System.CommandLine;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Schedulers;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc sample</c>: a sampler for one job in the foreground (the node sampler's pipeline with that job
/// alone registered): runs until SIGTERM or a liveness rule, then finalizes. Hooks use <c>node-sampler</c>.
/// The arguments are checked here; the sampling runs in <c>alumet-hpc-sampler</c>, in this process's place
/// (<see cref="OneJobSampler"/>).
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
        // A SIGTERM from now on waits for the sampler's handlers and ends the job with its row (OneJobSampler).
        OneJobSampler.HoldEndSignals();
        if (sluid?.Length == 0) sluid = null; // absent, as RunId.Of reads it
        string? bad =
            !SchedulerInput.IsJobId(jobId) ? $"--job-id {SchedulerInput.Quote(jobId)} is not a numeric job id" :
            !SchedulerInput.IsUserName(user) ? $"--user {SchedulerInput.Quote(user)} is not a valid user name" :
            !SchedulerInput.IsName(node) ? $"--node {SchedulerInput.Quote(node)} is not a valid node name" :
            !SchedulerInput.IsName(cluster) ? $"--cluster {SchedulerInput.Quote(cluster)} is not a valid cluster name" :
            uid < 0 ? $"--uid {uid} is negative" :
            sluid is not null && !SchedulerInput.IsToken(sluid) ? $"--sluid {SchedulerInput.Quote(sluid)} is not a SLUID" :
            runId is not null && !RunId.IsValid(runId) ? $"--run-id {SchedulerInput.Quote(runId)} is not a run id (1-64 letters and digits)" :
            gpus is not null && !Sources.Nvml.GpuAllocation.TryParse(gpus, out _, out string? gpuError) ? $"--gpus {SchedulerInput.Quote(gpus)} is not a GPU list: {gpuError}" :
            null;
        if (bad is not null)
        {
            Console.Error.WriteLine($"alumet-hpc: sample: {bad}");
            return 2;
        }

        var job = new JobIdentity(scheduler, cluster, jobId, user, uid, node, runId ?? RunId.Of(sluid, DateTime.UtcNow))
        {
            JobName = JobIdentity.RecordedName(jobName),
        };
        var allocation = Sources.Nvml.GpuAllocation.Parse(gpus); // validated above; the registration carries its canonical list
        var reg = OneJobSampler.Registration(job, allocation.IsEmpty ? null : allocation.List, sluid, exclusive);

        // The sampling runs in alumet-hpc-sampler, in this process's place (OneJobSampler), found as the prologs find it.
        // Where only alumet-hpc is installed (or the execve fails), this binary samples the job itself, as the prologs
        // then start its own node-sampler: the job is measured either way.
        string? notice = null;
        if (SamplerLauncher.LeanSampler() is { } sampler)
            notice = OneJobSampler.Exec(sampler, configPath, detach, reg) + "; sampling in alumet-hpc";
        return OneJobSampler.Run(configPath, detach, reg, cfg => new InProcessFinalization(cfg), notice);
    }
}
