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

    public JobCgroup? Find(JobIdentity job)
    {
        // v2 first: a v2 host may still show an empty v1 cpuacct mount, never the reverse with OAR 3 slices.
        foreach (string slice in V2OarSlices())
        {
            if (job.Uid >= 0)
            {
                string uid = job.Uid.ToString(CultureInfo.InvariantCulture);
                string dir = Path.Combine(slice, $"oar-u{uid}.slice", $"oar-u{uid}-j{job.JobId}.slice");
                if (CgroupHierarchy.IsV2(dir)) return new JobCgroup(job.JobId, dir, CgroupVersion.V2);
            }
            else
            {
                foreach (JobCgroup c in ScanV2(slice))
                    if (c.JobId == job.JobId) return c;
            }
        }
        foreach (string oarDir in V1OarDirs())
        {
            string dir = Path.Combine(oarDir, $"{job.User}_{job.JobId}");
            if (CgroupHierarchy.IsV1(dir)) return new JobCgroup(job.JobId, dir, CgroupVersion.V1);
        }
        return null;
    }

    public IReadOnlyList<JobCgroup> EnumerateJobs()
    {
        var found = new List<JobCgroup>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string slice in V2OarSlices())
            foreach (JobCgroup c in ScanV2(slice))
                if (seen.Add(c.JobId)) found.Add(c);
        // The same job is in every v1 hierarchy (and cpuacct may be reachable under several names,
        // e.g. the cpuacct -> cpu,cpuacct symlink): the first hierarchy that has it wins.
        foreach (string oarDir in V1OarDirs())
        {
            foreach (string dir in CgroupHierarchy.Subdirectories(oarDir) ?? []) // not listed: none found now
            {
                string name = Path.GetFileName(dir);
                int us = name.LastIndexOf('_');
                if (us <= 0) continue;
                string id = name[(us + 1)..];
                if (!OarInput.IsJobId(id) || !CgroupHierarchy.IsV1(dir)) continue;
                if (seen.Add(id)) found.Add(new JobCgroup(id, dir, CgroupVersion.V1));
            }
        }
        found.Sort((a, b) => CompareJobIds(a.JobId, b.JobId));
        return found;
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

    private IEnumerable<JobCgroup> ScanV2(string oarSlice)
    {
        foreach (string userSlice in CgroupHierarchy.Subdirectories(oarSlice) ?? [])
        {
            string u = Path.GetFileName(userSlice);
            if (!u.StartsWith("oar-u", StringComparison.Ordinal) || !u.EndsWith(".slice", StringComparison.Ordinal)) continue;
            string prefix = u[..^".slice".Length] + "-j";
            foreach (string jobSlice in CgroupHierarchy.Subdirectories(userSlice) ?? [])
            {
                string name = Path.GetFileName(jobSlice);
                if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                string? id = JobIdFromName(name);
                if (id is not null && CgroupHierarchy.IsV2(jobSlice)) yield return new JobCgroup(id, jobSlice, CgroupVersion.V2);
            }
        }
    }

    private IEnumerable<string> V2OarSlices()
    {
        foreach (string root in CgroupHierarchy.V2Roots(_cgroupRoot))
        {
            string slice = Path.Combine(root, "oar.slice");
            if (Directory.Exists(slice)) yield return slice;
        }
    }

    /// <summary>The OAR directory of every v1 hierarchy that accounts CPU time.</summary>
    private IEnumerable<string> V1OarDirs()
    {
        foreach (string h in CgroupHierarchy.V1CpuacctHierarchies(_cgroupRoot))
        {
            string d = Path.Combine(h, _cpusetPath);
            if (Directory.Exists(d)) yield return d;
        }
    }

    private static int CompareJobIds(string a, string b) =>
        a.Length != b.Length ? a.Length.CompareTo(b.Length) : string.CompareOrdinal(a, b);
}
