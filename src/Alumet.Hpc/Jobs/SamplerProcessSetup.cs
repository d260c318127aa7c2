using Alumet.Hpc.Attribution;
using Alumet.Hpc.Core;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// What a detached sampler does first, because schedulers are hostile to leftover children:
/// Slurm kills the prolog's process group (→ own session), OAR's prologue blocks SIGTERM and the mask is
/// inherited (→ empty mask), a child holding the prologue's stdout makes the OAR job hang (→ /dev/null),
/// and OAR kill -9s everything in the job cpuset after the epilogue (→ leave the job's cgroups and its CPU
/// pinning; our CPU time is then not charged to the job either).
/// </summary>
public static class SamplerProcessSetup
{
    public static unsafe void Detach(string cgroupRoot)
    {
        if (Libc.setsid() < 0) Log.Warn("setsid failed: the sampler stays in the caller's session");

        if (Libc.MaskSignals(Libc.SIG_SETMASK, []) != 0) Log.Warn("could not clear the inherited signal mask");

        int devnull = Libc.open("/dev/null", 2 /* O_RDWR */);
        if (devnull >= 0)
        {
            for (int fd = 0; fd <= 2; fd++) Libc.dup2(devnull, fd);
            if (devnull > 2) Libc.close(devnull);
        }

        LeaveCgroups(cgroupRoot, "/proc/self/cgroup");

        // All CPUs: the cpuset we left had pinned us to the job's cores.
        byte* mask = stackalloc byte[128];
        new Span<byte>(mask, 128).Fill(0xFF);
        if (Libc.sched_setaffinity(0, 128, mask) != 0) Log.Warn("could not reset CPU affinity");
    }

    /// <summary>Moves this process to the root cgroup of every hierarchy it belongs to (v1 and v2).</summary>
    public static void LeaveCgroups(string cgroupRoot, string selfCgroupFile)
    {
        foreach (var (controllers, path) in CgroupHierarchy.OfThisProcess(selfCgroupFile))
        {
            if (path == "/") continue;
            foreach (string dir in HierarchyDirectories(cgroupRoot, controllers))
            {
                if (!File.Exists(Path.Combine(dir, "cgroup.procs"))) continue;
                try
                {
                    CgroupHierarchy.MoveThisProcess(dir);
                    break;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Log.Warn($"could not leave cgroup {path} via {Path.Combine(dir, "cgroup.procs")}: {e.Message}");
                }
            }
        }
    }

    private static IEnumerable<string> HierarchyDirectories(string root, string controllers)
    {
        if (controllers.Length == 0) { yield return root; yield break; } // v2 unified
        string named = controllers.StartsWith("name=", StringComparison.Ordinal) ? controllers["name=".Length..] : controllers;
        yield return Path.Combine(root, named);
        foreach (string c in named.Split(',')) yield return Path.Combine(root, c);
    }
}
