using System.Globalization;
using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>
/// Where OAR's job resource manager puts job cgroups, under the cgroup root ([paths].cgroup_root):
/// <list type="bullet">
/// <item>OAR 2 (job_resource_manager_cgroups.pl, cgroup v1): <c>&lt;ctrl&gt;/oar/&lt;user&gt;_&lt;jobid&gt;</c> in every
/// controller hierarchy (cpuset, cpu, cpuacct, devices, freezer); CPU time comes from the hierarchy that
/// carries cpuacct: <c>cpuacct</c>, the combined <c>cpu,cpuacct</c> / <c>cpuacct,cpu</c> mounts, or a
/// co-mounted hierarchy such as OAR's own <c>/dev/oar_cgroups</c> (<c>cpuset,cpu,cpuacct,...</c>).
/// "/oar" is oar.conf's CPUSET_PATH.</item>
/// <item>OAR 3 (cgroup v2): <c>oar.slice/oar-u&lt;uid&gt;.slice/oar-u&lt;uid&gt;-j&lt;jobid&gt;.slice</c>, also under
/// <c>unified/</c> on hybrid hosts.</item>
/// </list>
/// The resource manager creates the cgroup before the prologue and removes it after the epilogue
/// (observed on 2.5.9), so nothing is cached: every call looks again.
/// </summary>
public sealed class OarCgroupLocator : IJobCgroupLocator
{
    private readonly string _cgroupRoot;
    private readonly string _cpusetPath;

    /// <param name="cgroupRoot">cgroup filesystem root ("/sys/fs/cgroup", or a generated tree in tests).</param>
    /// <param name="cpusetPath">oar.conf CPUSET_PATH (default "/oar"): the OAR directory inside each v1 hierarchy.</param>
    public OarCgroupLocator(string cgroupRoot, string cpusetPath = "/oar")
    {
        _cgroupRoot = cgroupRoot;
        _cpusetPath = cpusetPath.Trim('/');
        if (_cpusetPath.Length == 0) _cpusetPath = "oar";
    }

    public static OarCgroupLocator Create(string cgroupRoot, string cpusetPath = "/oar") => new(cgroupRoot, cpusetPath);

    public JobCgroup? Find(JobIdentity job, out Presence presence)
    {
        bool unknown = false;
        presence = Presence.There;
        // v2 first: a v2 host may still show an empty v1 cpuacct mount, never the reverse with OAR 3 slices.
        foreach (string slice in V2OarSlices(ref unknown))
        {
            if (job.Uid >= 0)
            {
                string uid = job.Uid.ToString(CultureInfo.InvariantCulture);
                string dir = Path.Combine(slice, $"oar-u{uid}.slice", $"oar-u{uid}-j{job.JobId}.slice");
                if (CgroupHierarchy.Is(dir, CgroupVersion.V2, ref unknown)) return new JobCgroup(job.JobId, dir, CgroupVersion.V2);
            }
            else if (ScanV2(slice, job.JobId, ref unknown) is { } found) return found;
        }
        foreach (string oarDir in V1OarDirs(ref unknown))
        {
            string dir = Path.Combine(oarDir, $"{job.User}_{job.JobId}");
            if (CgroupHierarchy.Is(dir, CgroupVersion.V1, ref unknown)) return new JobCgroup(job.JobId, dir, CgroupVersion.V1);
        }
        presence = CgroupHierarchy.NotFound(unknown);
        return null;
    }

    /// <summary>
    /// v1: the OAR directory (CPUSET_PATH), which holds the job cgroups only. v2: <c>oar-u&lt;uid&gt;.slice</c> (that user's
    /// job slices), then <c>oar.slice</c> (the user slices).
    /// </summary>
    public IReadOnlyList<string> Parents(JobCgroup job)
    {
        string? up = Path.GetDirectoryName(job.Directory);
        if (up is null) return [];
        return job.Version == CgroupVersion.V2 && Path.GetDirectoryName(up) is { } oarSlice ? [up, oarSlice] : [up];
    }

    /// <summary>Parses a job id out of an OAR cgroup directory name (v1 "user_42", v2 "oar-u1000-j42.slice").</summary>
    internal static string? JobIdFromName(string name)
    {
        if (name.StartsWith("oar-u", StringComparison.Ordinal) && name.EndsWith(".slice", StringComparison.Ordinal))
        {
            int j = name.IndexOf("-j", StringComparison.Ordinal);
            if (j < 0) return null;
            string id = name[(j + 2)..^".slice".Length];
            string uid = name["oar-u".Length..j];
            return OarInput.IsJobId(id) && uid.Length > 0 && uid.All(char.IsAsciiDigit) ? id : null;
        }
        int us = name.LastIndexOf('_');
        if (us <= 0) return null;
        string v1 = name[(us + 1)..];
        return OarInput.IsJobId(v1) ? v1 : null;
    }

    /// <summary>Job <paramref name="jobId"/>'s slice below <paramref name="oarSlice"/>, whatever its user (a directory that
    /// could not be listed sets <paramref name="unknown"/>).</summary>
    private static JobCgroup? ScanV2(string oarSlice, string jobId, ref bool unknown)
    {
        string[]? userSlices = CgroupHierarchy.Subdirectories(oarSlice);
        unknown |= userSlices is null;
        foreach (string userSlice in userSlices ?? [])
        {
            string u = Path.GetFileName(userSlice);
            if (!u.StartsWith("oar-u", StringComparison.Ordinal) || !u.EndsWith(".slice", StringComparison.Ordinal)) continue;
            string prefix = u[..^".slice".Length] + "-j";
            string[]? jobSlices = CgroupHierarchy.Subdirectories(userSlice);
            unknown |= jobSlices is null;
            foreach (string jobSlice in jobSlices ?? [])
            {
                string name = Path.GetFileName(jobSlice);
                if (name.StartsWith(prefix, StringComparison.Ordinal) && JobIdFromName(name) == jobId
                    && CgroupHierarchy.Is(jobSlice, CgroupVersion.V2, ref unknown))
                    return new JobCgroup(jobId, jobSlice, CgroupVersion.V2);
            }
        }
        return null;
    }

    /// <summary>The <c>oar.slice</c> of every v2 tree, those there (<see cref="CgroupHierarchy.IsThere"/>).</summary>
    private List<string> V2OarSlices(ref bool unknown)
    {
        var slices = new List<string>(2);
        foreach (string root in CgroupHierarchy.V2Roots(_cgroupRoot, ref unknown))
        {
            string slice = Path.Combine(root, "oar.slice");
            if (CgroupHierarchy.IsThere(slice, ref unknown)) slices.Add(slice);
        }
        return slices;
    }

    /// <summary>The OAR directory of every v1 hierarchy that accounts CPU time, those there (<see cref="CgroupHierarchy.IsThere"/>).</summary>
    private List<string> V1OarDirs(ref bool unknown)
    {
        var dirs = new List<string>();
        foreach (string h in CgroupHierarchy.V1CpuacctHierarchies(_cgroupRoot, ref unknown))
        {
            string d = Path.Combine(h, _cpusetPath);
            if (CgroupHierarchy.IsThere(d, ref unknown)) dirs.Add(d);
        }
        return dirs;
    }
}
