namespace Alumet.Hpc.Attribution;

/// <summary>What stat(2) tells of a cgroup's path (<see cref="CgroupHierarchy.PresenceOf"/>).</summary>
public enum Presence
{
    /// <summary>There (the same inode, where one was given).</summary>
    There,
    /// <summary>No such path (ENOENT, ENOTDIR), or another inode there.</summary>
    Gone,
    /// <summary>stat failed with another error: whether it is there is not known.</summary>
    Unknown,
}

/// <summary>
/// What every scheduler's cgroup locator reads of the cgroup filesystem, so that Slurm and OAR differ only in their
/// layout below it (Schedulers/Slurm/SlurmCgroupLocator.cs, Schedulers/Oar/OarCgroupLocator.cs): where the v2 tree and
/// the v1 hierarchies that account CPU time are, what makes a directory a cgroup with CPU time, and listing
/// directories that a job's end may remove at any moment.
/// </summary>
public static class CgroupHierarchy
{
    /// <summary>The v2 trees under <paramref name="cgroupRoot"/>: the root itself, and <c>unified/</c> on hybrid hosts;
    /// each only when it holds <c>cgroup.controllers</c> (<see cref="IsThere"/>: <paramref name="unknown"/> set where that
    /// could not be stat'ed).</summary>
    public static List<string> V2Roots(string cgroupRoot, ref bool unknown)
    {
        var roots = new List<string>(2);
        foreach (string root in new[] { cgroupRoot, Path.Combine(cgroupRoot, "unified") })
            if (IsThere(Path.Combine(root, "cgroup.controllers"), ref unknown)) roots.Add(root);
        return roots;
    }

    /// <summary>
    /// The v1 hierarchies that account CPU time (<c>cpuacct</c>): the root itself when one co-mounted hierarchy is
    /// mounted there (OAR mounts <c>cpuset,cpu,cpuacct,...</c> at <c>/dev/oar_cgroups</c> when the OS has not mounted
    /// cpuset), then every directory whose comma-separated name holds cpuacct (<c>cpuacct</c>, <c>cpu,cpuacct</c>,
    /// <c>cpuacct,cpu</c>, co-mounts), plain <c>cpuacct</c> first, then by name: a stable choice when a host has both
    /// the combined mount and its <c>cpuacct</c> link. <paramref name="unknown"/> is set where the root could not be
    /// stat'ed or listed (an error other than ENOENT or ENOTDIR): what is not found then is not known to be absent.
    /// </summary>
    public static List<string> V1CpuacctHierarchies(string cgroupRoot, ref bool unknown)
    {
        var found = new List<string>();
        if (Is(cgroupRoot, CgroupVersion.V1, ref unknown)) found.Add(cgroupRoot);
        string[]? dirs = Subdirectories(cgroupRoot); // not listed: none found now, looked up again at the next Find
        unknown |= dirs is null;
        found.AddRange((dirs ?? []).Where(h => Path.GetFileName(h).Split(',').Contains("cpuacct"))
            .OrderBy(h => Path.GetFileName(h) == "cpuacct" ? 0 : 1).ThenBy(h => h, StringComparer.Ordinal));
        return found;
    }

    /// <summary>
    /// Whether a cgroup of <paramref name="version"/> with CPU time is at <paramref name="dir"/> (v1 <c>cpuacct.usage</c>,
    /// v2 <c>cpu.stat</c>), as <see cref="IsThere"/>: a lookup's step.
    /// </summary>
    public static bool Is(string dir, CgroupVersion version, ref bool unknown) => IsThere(CpuFile(dir, version), ref unknown);

    /// <summary>
    /// A lookup's step (the schedulers' locators: where a job's cgroup is): whether <paramref name="path"/> is there
    /// (<see cref="PresenceOf"/>), and where stat fails with an error other than ENOENT or ENOTDIR, not known:
    /// <paramref name="unknown"/> is set, so that a lookup that finds nothing says "not known" rather than "not there"
    /// (<see cref="IJobCgroupLocator.Find"/>; until 2026-12-03 any failed stat was "not there").
    /// </summary>
    public static bool IsThere(string path, ref bool unknown)
    {
        var at = PresenceOf(path);
        unknown |= at == Presence.Unknown;
        return at == Presence.There;
    }

    /// <summary>What a lookup that found nothing says: <see cref="Presence.Unknown"/> where a step of it could not tell.</summary>
    public static Presence NotFound(bool unknown) => unknown ? Presence.Unknown : Presence.Gone;

    /// <summary>The file of a cgroup of <paramref name="version"/> at <paramref name="dir"/> that holds its CPU time.</summary>
    public static string CpuFile(string dir, CgroupVersion version) =>
        Path.Combine(dir, version == CgroupVersion.V2 ? "cpu.stat" : "cpuacct.usage");

    /// <summary>Whether a cgroup of <paramref name="version"/> with CPU time is at <paramref name="dir"/>: its CPU file's <see cref="PresenceOf"/>.</summary>
    public static Presence Is(string dir, CgroupVersion version) => PresenceOf(CpuFile(dir, version));

    /// <summary>
    /// Whether <paramref name="path"/> is there now, by stat(2), and given <paramref name="inode"/>, the same one: the one
    /// answer of the node sampler to "is this cgroup still there" (README "Attribution"). <see cref="Presence.Gone"/> when
    /// stat fails with ENOENT or ENOTDIR, or names another inode (a cgroup made again at that path: a requeue's);
    /// <see cref="Presence.Unknown"/> when it fails with any other error (EACCES from a directory above without search
    /// permission or from an LSM, EIO, ENOMEM, ELOOP, ...), which is not "gone": what was known of the cgroup stays, and
    /// the parts that depend on it are flagged not exact. Until 2026-12-03 any failed stat was "gone".
    /// </summary>
    public static Presence PresenceOf(string path, ulong? inode = null)
    {
        if (Native.Libc.StatPath(path, out int errno) is { } d) return inode is null || d.Ino == inode ? Presence.There : Presence.Gone;
        if (errno != 0) return errno is Native.Libc.ENOENT or Native.Libc.ENOTDIR ? Presence.Gone : Presence.Unknown;
        // Not stat'ed (an ABI whose struct stat is not known here, where no inode is known either): .NET's stat.
        try
        {
            File.GetAttributes(path);
            return Presence.There;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return Presence.Gone; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return Presence.Unknown; }
    }

    /// <summary>
    /// This process's cgroups from <paramref name="selfCgroupFile"/> (<c>/proc/self/cgroup</c>): one entry per hierarchy,
    /// its controller list (empty for v2, "name=x" for a named v1 hierarchy) and its path in that hierarchy; none when
    /// the file cannot be read.
    /// </summary>
    public static IEnumerable<(string Controllers, string Path)> OfThisProcess(string selfCgroupFile = "/proc/self/cgroup")
    {
        string[] lines;
        try { lines = File.ReadAllLines(selfCgroupFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { yield break; }
        foreach (string line in lines)
        {
            var parts = line.Split(':', 3); // "hierarchy-id:controller-list:path"; v2 is "0::path"
            if (parts.Length == 3 && (parts[1].Length > 0 || parts[0] == "0")) yield return (parts[1], parts[2]);
        }
    }

    /// <summary>Moves this process into the cgroup <paramref name="dir"/> (writes its pid to <c>cgroup.procs</c>).</summary>
    public static void MoveThisProcess(string dir) =>
        File.AppendAllText(Path.Combine(dir, "cgroup.procs"), Environment.ProcessId.ToString());

    /// <summary>
    /// The subdirectories of <paramref name="dir"/> matching <paramref name="pattern"/>, sorted by name; none when it does
    /// not exist (ENOENT, or ENOTDIR: .NET's DirectoryNotFoundException; a cgroup directory removed between listing and
    /// use, at a job's end, is not an error); null when it could not be listed for any other reason (EACCES from an LSM or
    /// a unit without CAP_DAC_READ_SEARCH, ELOOP, EMFILE, EIO, ...): what is in it is then not known, which is not
    /// "nothing" (README "Attribution": a failed step listing keeps the job's steps; a parent that cannot be listed is
    /// not proven to hold only jobs).
    /// </summary>
    public static string[]? Subdirectories(string dir, string pattern = "*")
    {
        try
        {
            string[] d = Directory.GetDirectories(dir, pattern);
            Array.Sort(d, StringComparer.Ordinal);
            return d;
        }
        catch (DirectoryNotFoundException) { return []; } // opendir: ENOENT or ENOTDIR
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
