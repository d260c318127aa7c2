namespace Alumet.Hpc.Jobs;

/// <summary>Who and where: the key of a job's files and accounting row.</summary>
/// <param name="Scheduler">"slurm", "oar" or "exec".</param>
/// <param name="RunId">Which run of the job (<see cref="Jobs.RunId"/>); empty until known: the sampler then takes its
/// start time, and an epilog the one recorded in the job's meta.json.</param>
public sealed record JobIdentity(string Scheduler, string Cluster, string JobId, string User, int Uid, string Node, string RunId = "")
{
    public string Consumer => $"job:{JobId}";

    /// <summary>Per-job state directory: &lt;state_dir&gt;/&lt;scheduler&gt;/&lt;job id&gt;.</summary>
    public string StateDirectory(string stateRoot) => Path.Combine(stateRoot, Scheduler, JobId);
}
