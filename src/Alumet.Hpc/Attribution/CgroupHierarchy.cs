namespace Alumet.Hpc.Attribution;

/// <summary>
/// What every scheduler's cgroup locator reads of the cgroup filesystem, so that Slurm and OAR differ only in their
/// layout below it (Schedulers/Slurm/SlurmCgroupLocator.cs, Schedulers/Oar/OarCgroupLocator.cs): where the v2 tree and
/// the v1 hierarchies that account CPU time are, what makes a directory a cgroup with CPU time, and listing
/// directories that a job's end may remove at any moment.
/// </summary>
public static class CgroupHierarchy
{
    /// <summary>The v2 trees under <paramref name="cgroupRoot"/>: the root itself, and <c>unified/</c> on hybrid hosts;
    /// each only when it holds <c>cgroup.controllers</c>.</summary>
    public static IEnumerable<string> V2Roots(string cgroupRoot)
    {
        foreach (string root in new[] { cgroupRoot, Path.Combine(cgroupRoot, "unified") })
            if (File.Exists(Path.Combine(root, "cgroup.controllers"))) yield return root;
    }

    /// <summary>
    /// The v1 hierarchies that account CPU time (<c>cpuacct</c>): the root itself when one co-mounted hierarchy is
    /// mounted there (OAR mounts <c>cpuset,cpu,cpuacct,...</c> at <c>/dev/oar_cgroups</c> when the OS has not mounted
    /// cpuset), then every directory whose comma-separated name holds cpuacct (<c>cpuacct</c>, <c>cpu,cpuacct</c>,
    /// <c>cpuacct,cpu</c>, co-mounts), plain <c>cpuacct</c> first, then by name: a stable choice when a host has both
    /// the combined mount and its <c>cpuacct</c> link.
    /// </summary>
    public static IEnumerable<string> V1CpuacctHierarchies(string cgroupRoot)
    {
        if (IsV1(cgroupRoot)) yield return cgroupRoot;
        foreach (string h in (Subdirectories(cgroupRoot) ?? []) // not listed: none found now, looked up again at the next Find
                     .Where(h => Path.GetFileName(h).Split(',').Contains("cpuacct"))
                     .OrderBy(h => Path.GetFileName(h) == "cpuacct" ? 0 : 1).ThenBy(h => h, StringComparer.Ordinal))
            yield return h;
    }

    /// <summary>A v1 cgroup with CPU time: <c>cpuacct.usage</c> (ns).</summary>
    public static bool IsV1(string dir) => File.Exists(Path.Combine(dir, "cpuacct.usage"));

    /// <summary>A v2 cgroup with CPU time: <c>cpu.stat</c> (<c>usage_usec</c>).</summary>
    public static bool IsV2(string dir) => File.Exists(Path.Combine(dir, "cpu.stat"));

    /// <summary>A cgroup of <paramref name="version"/> with CPU time at <paramref name="dir"/>, or false.</summary>
    public static bool Is(string dir, CgroupVersion version) => version == CgroupVersion.V2 ? IsV2(dir) : IsV1(dir);

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
