using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sources.Nvml;

namespace Alumet.Hpc.Schedulers.Slurm;

/// <summary>A validated Slurm job as seen by a Prolog/Epilog on one node.</summary>
/// <param name="Gid">SLURM_JOB_GID: group of the job's output files.</param>
/// <param name="Gpus">The job's GPUs on this node (<see cref="GpuAllocation.TryFromSlurm"/>); empty = none.</param>
/// <param name="Sluid">SLURM_JOB_SLUID (Slurm ≥ 25.11), names the v2 job cgroup from 26.05.</param>
/// <param name="RawRequested">The job's comment asks for raw storage (<see cref="SlurmHook.RawCommentWord"/>).</param>
public sealed record SlurmJob(JobIdentity Identity, int Gid, GpuAllocation Gpus, string? Sluid, bool RawRequested = false);

/// <summary>Either a job or the one-line reason it was refused.</summary>
public readonly record struct SlurmJobParse(SlurmJob? Job, string? Error)
{
    public bool Ok => Job is not null;
}
