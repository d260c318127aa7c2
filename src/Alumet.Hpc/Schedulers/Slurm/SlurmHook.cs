using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sources.Nvml;

namespace Alumet.Hpc.Schedulers.Slurm;

/// <summary>
/// Slurm Prolog/Epilog entry points. slurmd runs them as root with no argv, no PATH and no HOME;
/// a non-zero exit drains the node, so both always return 0 and report problems to the log only.
/// </summary>
public static partial class SlurmHook
{
    public const string Scheduler = SchedulerNames.Slurm;

    /// <summary>
    /// Validates the job environment of a Prolog/Epilog. Every value that will name a file, a cgroup or a
    /// row must match a narrow alphabet; the first bad one refuses the whole job.
    /// </summary>
    /// <param name="configuredCluster">[cluster].name; empty = SLURM_CLUSTER_NAME, else "local".</param>
    public static SlurmJobParse ParseJob(IReadOnlyDictionary<string, string> env, string configuredCluster = "")
    {
        string? Get(string k) => env.TryGetValue(k, out string? v) ? v : null;
        static SlurmJobParse Fail(string msg) => new(null, msg);

        // SLURM_JOBID is the pre-2.x spelling, still set alongside SLURM_JOB_ID.
        string? jobId = Get("SLURM_JOB_ID") ?? Get("SLURM_JOBID");
        if (!SchedulerInput.IsJobId(jobId)) return Fail($"SLURM_JOB_ID {SchedulerInput.Quote(jobId)} is not a job id (digits)");
        if (!SchedulerInput.TryParseId(Get("SLURM_JOB_UID"), out int uid))
            return Fail($"SLURM_JOB_UID {SchedulerInput.Quote(Get("SLURM_JOB_UID"))} is not a uid (digits)");
        if (!SchedulerInput.TryParseId(Get("SLURM_JOB_GID"), out int gid))
            return Fail($"SLURM_JOB_GID {SchedulerInput.Quote(Get("SLURM_JOB_GID"))} is not a gid (digits)");
        string? user = Get("SLURM_JOB_USER");
        if (!SchedulerInput.IsUserName(user)) return Fail($"SLURM_JOB_USER {SchedulerInput.Quote(user)} is not a user name");
        string? node = Get("SLURMD_NODENAME");
        if (!SchedulerInput.IsName(node)) return Fail($"SLURMD_NODENAME {SchedulerInput.Quote(node)} is not a node name");

        string? envCluster = Get("SLURM_CLUSTER_NAME");
        if (envCluster is not null && !SchedulerInput.IsName(envCluster))
            return Fail($"SLURM_CLUSTER_NAME {SchedulerInput.Quote(envCluster)} is not a cluster name");
        string cluster = configuredCluster.Length > 0 ? configuredCluster : envCluster ?? "local";
        if (!SchedulerInput.IsName(cluster)) return Fail($"cluster name {SchedulerInput.Quote(cluster)} (config) is not a cluster name");

        // SLURM_JOB_GPUS holds Slurm's GPU indices in the prolog; CUDA_VISIBLE_DEVICES is the fallback only: slurmd
        // (gres_common_prep_set_env) puts the device's unique id there when it has one, i.e. MIG UUIDs on MIG nodes.
        if (!GpuAllocation.TryFromSlurm(Get, out GpuAllocation gpus, out string key, out string? gpuError))
            return Fail($"{key} {SchedulerInput.Quote(Get(key))} is not a GPU list: {gpuError}");

        string? sluid = Get("SLURM_JOB_SLUID");
        if (sluid is { Length: 0 }) sluid = null;
        if (sluid is not null && !SchedulerInput.IsToken(sluid))
            return Fail($"SLURM_JOB_SLUID {SchedulerInput.Quote(sluid)} is not a SLUID (letters and digits)");

        // The SLUID names the run on every node. Without one (Slurm < 25.11), the job's start as slurmctld recorded it
        // (SLURM_JOB_START_TIME, from the job credential: prep_script_slurmd.c; not in 22.05's), the same on every node
        // and in the epilog of a node whose prolog never registered the job; else the sampler's start (the prolog's time).
        string runId = sluid ?? "";
        if (sluid is null && Get("SLURM_JOB_START_TIME") is { Length: > 0 } started)
        {
            if (!long.TryParse(started, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long s)
                || s <= 0 || s > MaxUnixSeconds)
                return Fail($"SLURM_JOB_START_TIME {SchedulerInput.Quote(started)} is not a time (seconds since 1970)");
            runId = RunId.FromStart(DateTime.UnixEpoch.AddSeconds(s));
        }
        // SLURM_JOB_NAME: slurmd's Prolog/Epilog environment has no job name (prep_script_slurmd.c, 22.05 to 26.11);
        // taken when a site's wrapper or a later Slurm provides it (slurm/README.md, "Job names").
        var identity = new JobIdentity(Scheduler, cluster, jobId!, user!, uid, node!, runId)
        {
            JobName = JobIdentity.RecordedName(Get("SLURM_JOB_NAME")),
        };
        return new SlurmJobParse(new SlurmJob(identity, gid, gpus, sluid, RawRequested(Get("SLURM_JOB_COMMENT"))), null);
    }

    /// <summary>9999-12-31T23:59:59Z: the last second a run id's start time can name.</summary>
    private const long MaxUnixSeconds = 253_402_300_799;

    /// <summary>The word that asks for raw storage in a job's comment (<c>--comment=alumet:raw</c>).</summary>
    public const string RawCommentWord = "alumet:raw";

    /// <summary>
    /// Whether the job's comment holds <see cref="RawCommentWord"/> as a word (separated by spaces, commas or
    /// semicolons). Slurm 22.05's prolog gets the comment (SLURM_JOB_COMMENT, from the job credential) but neither
    /// <c>--profile</c> nor <c>--acctg-freq</c> (slurm/README.md "Raw storage on request"). The comment only asks:
    /// <c>[sampler] job_raw</c> decides.
    /// </summary>
    public static bool RawRequested(string? comment)
    {
        if (string.IsNullOrEmpty(comment)) return false;
        foreach (var word in comment.Split([' ', '\t', ',', ';'], StringSplitOptions.RemoveEmptyEntries))
            if (word.Equals(RawCommentWord, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }
}
