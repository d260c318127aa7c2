using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Schedulers.Slurm;

/// <summary>
/// Where Slurm's task/cgroup and proctrack/cgroup plugins put job cgroups, under the cgroup root
/// ([paths].cgroup_root, normally /sys/fs/cgroup):
/// <list type="bullet">
/// <item>cgroup v1: <c>&lt;ctrl&gt;/slurm_&lt;node&gt;/uid_&lt;uid&gt;/job_&lt;id&gt;</c> (builds with multiple-slurmd support,
/// e.g. Debian's) or <c>&lt;ctrl&gt;/slurm/uid_&lt;uid&gt;/job_&lt;id&gt;</c>, where &lt;ctrl&gt; is a hierarchy that carries
/// cpuacct (<see cref="CgroupHierarchy.V1CpuacctHierarchies"/>: <c>cpuacct</c>, the combined <c>cpu,cpuacct</c> /
/// <c>cpuacct,cpu</c> mounts).</item>
/// <item>cgroup v2: <c>system.slice/slurmstepd.scope/job_&lt;id&gt;</c> (<c>&lt;node&gt;_slurmstepd.scope</c> with
/// multiple slurmd); from Slurm 26.05 the directory is <c>job_&lt;SLUID&gt;</c> unless CgroupJobIdPaths=yes.</item>
/// </list>
/// The job cgroup appears 0.1-0.4 s after the prolog and is gone when the epilog runs (observed on 22.05),
/// so every call looks again: nothing is cached.
/// </summary>
public sealed class SlurmCgroupLocator : IJobCgroupLocator, IStepCgroupLocator
{
    private readonly string _cgroupRoot;
    private readonly string _node;
    private readonly string? _sluid;

    /// <param name="cgroupRoot">cgroup filesystem root ("/sys/fs/cgroup", or a generated tree in tests).</param>
    /// <param name="node">This node's Slurm name (SLURMD_NODENAME).</param>
    /// <param name="sluid">The sampled job's SLUID (SLURM_JOB_SLUID, Slurm ≥ 25.11), if any.</param>
    public SlurmCgroupLocator(string cgroupRoot, string node, string? sluid = null)
    {
        _cgroupRoot = cgroupRoot;
        _node = node;
        _sluid = string.IsNullOrEmpty(sluid) ? null : sluid;
    }

    public static SlurmCgroupLocator Create(string cgroupRoot, string node, string? sluid) => new(cgroupRoot, node, sluid);

    /// <summary>The locator for the sampler of <paramref name="job"/>.</summary>
    public static SlurmCgroupLocator Create(string cgroupRoot, JobIdentity job, string? sluid) => new(cgroupRoot, job.Node, sluid);

    public JobCgroup? Find(JobIdentity job, out Presence presence)
    {
        bool unknown = false;
        presence = Presence.There;
        foreach (string scope in V2Scopes(ref unknown))
        {
            // SLUID-named first: on 26.05+ that is the default, the numeric name only with CgroupJobIdPaths=yes.
            if (_sluid is not null && CgroupHierarchy.Is(Path.Combine(scope, "job_" + _sluid), CgroupVersion.V2, ref unknown))
                return new JobCgroup(job.JobId, Path.Combine(scope, "job_" + _sluid), CgroupVersion.V2);
            string dir = Path.Combine(scope, "job_" + job.JobId);
            if (CgroupHierarchy.Is(dir, CgroupVersion.V2, ref unknown)) return new JobCgroup(job.JobId, dir, CgroupVersion.V2);
        }
        string uidDir = "uid_" + job.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (string slurmDir in V1SlurmDirs(ref unknown))
        {
            string dir = Path.Combine(slurmDir, uidDir, "job_" + job.JobId);
            if (CgroupHierarchy.Is(dir, CgroupVersion.V1, ref unknown)) return new JobCgroup(job.JobId, dir, CgroupVersion.V1);
        }
        presence = CgroupHierarchy.NotFound(unknown);
        return null;
    }

    /// <summary>
    /// v1: <c>uid_&lt;uid&gt;</c> (that user's job cgroups only), then <c>slurm_&lt;node&gt;</c> or <c>slurm</c> (the uid
    /// directories only); Slurm removes the uid directory with the user's last job on the node. v2: the stepd scope (it
    /// also holds the stepds' own cgroup, which is no job's: so a
    /// job's CPU time is never taken from it: <see cref="ParentCgroups"/>).
    /// </summary>
    public IReadOnlyList<string> Parents(JobCgroup job)
    {
        string? up = Path.GetDirectoryName(job.Directory);
        if (up is null) return [];
        return job.Version == CgroupVersion.V1 && Path.GetDirectoryName(up) is { } slurmDir ? [up, slurmDir] : [up];
    }

    /// <summary>
    /// The job's step cgroups, ordered by name; empty when the job cgroup is gone; null when it could not be listed, or a
    /// step directory listed could not be checked for its CPU file (a stat failing otherwise than ENOENT or ENOTDIR:
    /// <see cref="CgroupHierarchy.PresenceOf"/>; until 2026-12-03 that step was left out, so taken for gone).
    /// </summary>
    public IReadOnlyList<StepCgroup>? EnumerateSteps(JobCgroup job)
    {
        if (CgroupHierarchy.Subdirectories(job.Directory, "step_*") is not { } dirs) return null;
        var steps = new List<StepCgroup>();
        foreach (string dir in dirs)
        {
            switch (CgroupHierarchy.Is(dir, job.Version))
            {
                case Presence.There: steps.Add(new StepCgroup(job.JobId, Path.GetFileName(dir)["step_".Length..], dir, job.Version)); break;
                case Presence.Unknown: return null;
            }
        }
        steps.Sort((a, b) => string.CompareOrdinal(a.Step, b.Step));
        return steps;
    }

    /// <summary>The stepd scopes there (<see cref="CgroupHierarchy.IsThere"/>).</summary>
    private List<string> V2Scopes(ref bool unknown)
    {
        var scopes = new List<string>(2);
        foreach (string root in CgroupHierarchy.V2Roots(_cgroupRoot, ref unknown))
        {
            string slice = Path.Combine(root, "system.slice");
            foreach (string name in new[] { "slurmstepd.scope", _node + "_slurmstepd.scope" })
            {
                string scope = Path.Combine(slice, name);
                if (CgroupHierarchy.IsThere(scope, ref unknown)) scopes.Add(scope);
            }
        }
        return scopes;
    }

    /// <summary>The Slurm directories of the v1 hierarchies that account CPU time, those there (<see cref="CgroupHierarchy.IsThere"/>).</summary>
    private List<string> V1SlurmDirs(ref bool unknown)
    {
        var dirs = new List<string>(2);
        foreach (string ctrl in CgroupHierarchy.V1CpuacctHierarchies(_cgroupRoot, ref unknown))
            foreach (string name in new[] { "slurm_" + _node, "slurm" })
            {
                string dir = Path.Combine(ctrl, name);
                if (CgroupHierarchy.IsThere(dir, ref unknown)) dirs.Add(dir);
            }
        return dirs;
    }
}
