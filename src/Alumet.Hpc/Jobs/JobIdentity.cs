namespace Alumet.Hpc.Jobs;

/// <summary>Who and where: the key of a job's files and accounting row.</summary>
/// <param name="Scheduler">"slurm", "oar" or "exec".</param>
public sealed record JobIdentity(string Scheduler, string Cluster, string JobId, string User, int Uid, string Node)
{
    public string Consumer => $"job:{JobId}";

    /// <summary>Per-job state directory: &lt;state_dir&gt;/&lt;scheduler&gt;/&lt;job id&gt;.</summary>
    public string StateDirectory(string stateRoot) => Path.Combine(stateRoot, Scheduler, JobId);
}
