namespace Alumet.Hpc.Attribution;

public enum CgroupVersion { V1, V2 }

/// <summary>
/// A job's cgroup as seen for CPU accounting: <see cref="Directory"/> is the directory that holds
/// <c>cpuacct.usage</c> (v1, ns) or <c>cpu.stat</c> (v2, <c>usage_usec</c>).
/// </summary>
public sealed record JobCgroup(string JobId, string Directory, CgroupVersion Version);
