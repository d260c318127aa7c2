using System.Runtime.InteropServices;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// The cgroup of one <c>alumet-hpc exec</c> command, so that the node sampler splits the node between it and the
/// node's other jobs by CPU time like a scheduler's job: <c>&lt;hierarchy&gt;/alumet/exec_&lt;job id&gt;</c>, where the
/// hierarchy is the one that accounts CPU time under <c>[paths] cgroup_root</c> (the v2 tree when the root is one, else
/// the first v1 <c>cpuacct</c> hierarchy, as <see cref="CgroupHierarchy"/> finds them for Slurm and OAR, else the
/// hybrid <c>unified/</c> tree). Root creates it with mkdir(2), which refuses an existing path; the sampler accepts
/// only that exact path for that job id (<see cref="IsPathOf"/>), owned by root: nothing a user could plant.
/// </summary>
public sealed record ExecCgroup(string Directory, CgroupVersion Version)
{
    public const string Parent = "alumet";
    public static string Name(string jobId) => "exec_" + jobId;

    private const int EEXIST = 17, EBUSY = 16;

    /// <summary>Where the exec cgroups of this node go: the hierarchy and its version, or null when the host has none.</summary>
    public static (string Hierarchy, CgroupVersion Version)? Hierarchy(string cgroupRoot)
    {
        bool unknown = false; // a step that cannot tell is "not there" here: exec then makes no cgroup, a registration refuses its path (IsPathOf)
        var v2 = CgroupHierarchy.V2Roots(cgroupRoot, ref unknown);
        if (v2.Count > 0 && v2[0] == cgroupRoot) return (cgroupRoot, CgroupVersion.V2);
        foreach (string h in CgroupHierarchy.V1CpuacctHierarchies(cgroupRoot, ref unknown)) return (h, CgroupVersion.V1);
        foreach (string h in v2) return (h, CgroupVersion.V2);
        return null;
    }

    /// <summary>Creates the job's cgroup (root only); null with <paramref name="problem"/> when it cannot.</summary>
    /// <param name="inUse">Another exec with this job id is running: it holds the cgroup's lock (taken right after its
    /// mkdir, before its registration and its command), or the cgroup holds processes.</param>
    public static ExecCgroup? Create(string cgroupRoot, string jobId, out string? problem, out bool inUse)
    {
        problem = null;
        inUse = false;
        if (Hierarchy(cgroupRoot) is not var (hierarchy, version))
        {
            problem = $"no cgroup hierarchy that accounts CPU time under {cgroupRoot} (neither cgroup v2 nor a v1 cpuacct mount)";
            return null;
        }
        string parent = Path.Combine(hierarchy, Parent);
        if (Libc.mkdir(parent, 0b111_101_101) != 0 && Marshal.GetLastPInvokeError() is int e && e != EEXIST)
        {
            problem = $"cannot create {parent}: {Marshal.GetPInvokeErrorMessage(e)}";
            return null;
        }
        if (!RootOwnedDirectory(parent, out problem)) return null;
        string dir = Path.Combine(parent, Name(jobId));
        string running = $"exec job {jobId} is already running (another exec holds its cgroup {dir})";
        if (Libc.mkdir(dir, 0b111_101_101) != 0)
        {
            int err = Marshal.GetLastPInvokeError();
            if (err != EEXIST)
            {
                problem = $"cannot create {dir}: {Marshal.GetPInvokeErrorMessage(err)}";
                return null;
            }
            // An exec of this id holds its cgroup's lock from its mkdir to its exit, before its command is in it (its
            // registration comes first): in use. Else a leftover of a killed exec (an empty cgroup): removed, never reused.
            int leftover = Lock(dir);
            if (leftover == Held)
            {
                inUse = true;
                problem = running;
                return null;
            }
            if (leftover >= 0)
            {
                bool removed = Libc.rmdir(dir) == 0;
                int rmErr = removed ? 0 : Marshal.GetLastPInvokeError();
                Libc.close(leftover);
                if (!removed)
                {
                    // Processes and no lock: an exec of an earlier version, or a command the killed exec left running.
                    inUse = rmErr == EBUSY;
                    problem = inUse ? $"exec job {jobId} is already running (its cgroup {dir} holds processes)"
                        : $"cannot remove the leftover cgroup {dir}: {Marshal.GetPInvokeErrorMessage(rmErr)}";
                    return null;
                }
            }
            if (Libc.mkdir(dir, 0b111_101_101) != 0)
            {
                int again = Marshal.GetLastPInvokeError();
                inUse = again == EEXIST; // another exec of this id made it meanwhile
                problem = inUse ? running : $"cannot create {dir}: {Marshal.GetPInvokeErrorMessage(again)}";
                return null;
            }
        }
        // Ours: locked for this process's life (closed with it, not inherited by the command: O_CLOEXEC). Another exec
        // that removed and made it again between our mkdir and this lock holds it now: then it is that one's.
        int fd = Lock(dir);
        if (fd < 0)
        {
            inUse = true;
            problem = running;
            return null;
        }
        return new ExecCgroup(dir, version);
    }

    private const int Held = -1, Gone = -2;

    /// <summary>The cgroup directory opened and flock'ed (LOCK_EX, not waiting): its descriptor, <see cref="Held"/> when
    /// another process holds it, <see cref="Gone"/> when it cannot be opened (removed meanwhile).</summary>
    private static int Lock(string dir)
    {
        int fd = Libc.open(dir, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC);
        if (fd < 0) return Gone;
        if (Libc.flock(fd, Libc.LOCK_EX | Libc.LOCK_NB) == 0) return fd;
        Libc.close(fd);
        return Held;
    }

    /// <summary>
    /// True when <paramref name="path"/> is exactly where <see cref="Create"/> puts <paramref name="jobId"/>'s cgroup under
    /// <paramref name="cgroupRoot"/>, and it and its parent are root's directories (not links): what the node sampler
    /// requires of an exec job's cgroup before it reads anything there.
    /// </summary>
    public static bool IsPathOf(string cgroupRoot, string jobId, string path, out CgroupVersion version, out string? problem)
    {
        problem = null;
        version = CgroupVersion.V1;
        if (Hierarchy(cgroupRoot) is not var (hierarchy, v) || path != Path.Combine(hierarchy, Parent, Name(jobId)))
        {
            problem = $"cgroup {Schedulers.SchedulerInput.Quote(path)} is not where exec puts job {jobId}'s cgroup under {cgroupRoot}";
            return false;
        }
        version = v;
        return RootOwnedDirectory(Path.Combine(hierarchy, Parent), out problem) && RootOwnedDirectory(path, out problem);
    }

    private static bool RootOwnedDirectory(string dir, out string? problem)
    {
        problem = null;
        var info = new DirectoryInfo(dir);
        if (!info.Exists || info.LinkTarget is not null || Libc.StatLink(dir) is not { Uid: 0 }
            || (info.UnixFileMode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            problem = $"{dir} is not a directory of root's that only root can write: refused";
        return problem is null;
    }

    /// <summary>
    /// Moves this process into the cgroup; the caller starts the command then <see cref="Leave"/>s: the command is
    /// born in the cgroup (a fork inherits it), so none of its CPU time, nor its children's, is ever outside it.
    /// </summary>
    public void Enter() => CgroupHierarchy.MoveThisProcess(Directory);

    /// <summary>Moves this process back to <paramref name="original"/> (its cgroup before <see cref="Enter"/>), or to the hierarchy's root.</summary>
    public void Leave(string? original)
    {
        string hierarchy = Path.GetDirectoryName(Path.GetDirectoryName(Directory)!)!;
        foreach (string? dir in new[] { original, hierarchy })
        {
            if (dir is null) continue;
            try { CgroupHierarchy.MoveThisProcess(dir); return; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    /// <summary>This process's cgroup directory in the exec cgroup's hierarchy (from /proc/self/cgroup), or null.</summary>
    public string? Current(string selfCgroupFile = "/proc/self/cgroup")
    {
        string hierarchy = Path.GetDirectoryName(Path.GetDirectoryName(Directory)!)!;
        string[] controllers = Version == CgroupVersion.V2 ? [] : Path.GetFileName(hierarchy).Split(',');
        foreach (var (list, path) in CgroupHierarchy.OfThisProcess(selfCgroupFile))
            if (Version == CgroupVersion.V2 ? list.Length == 0 : list.Split(',').Order().SequenceEqual(controllers.Order()))
                return Path.Combine(hierarchy, path.TrimStart('/'));
        return null;
    }

    /// <summary>Removes the cgroup (rmdir); null when done or already gone, else why not (processes the command left running).</summary>
    public static string? Remove(string directory)
    {
        if (Libc.rmdir(directory) == 0) return null;
        int err = Marshal.GetLastPInvokeError();
        return CgroupHierarchy.PresenceOf(directory) == Presence.Gone ? null
            : $"cgroup {directory} not removed: {Marshal.GetPInvokeErrorMessage(err)}{(err == EBUSY ? " (processes the command left running are still in it)" : "")}";
    }
}

/// <summary>An exec job's one cgroup, named in its registration and checked by <see cref="ExecCgroup.IsPathOf"/>.</summary>
public sealed class ExecCgroupLocator(JobCgroup cgroup) : IJobCgroupLocator
{
    public JobCgroup? Find(JobIdentity job, out Presence presence) =>
        (presence = CgroupHierarchy.Is(cgroup.Directory, cgroup.Version)) == Presence.There ? cgroup : null;
}
