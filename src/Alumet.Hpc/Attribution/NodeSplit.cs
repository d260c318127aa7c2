namespace Alumet.Hpc.Attribution;

/// <summary>
/// Splits one period's node energy between ALL the node's registered jobs at once, in integers:
/// <code>
///   denominator  = max(node busy CPU time from /proc/stat, Σ CPU time of the jobs' cgroups)
///   job j        = floor(E × CPU_j / denominator)
///   unattributed = E − Σ job j          (idle power, system daemons, unregistered work, rounding)
/// </code>
/// so Σ jobs + unattributed = E exactly. The max() guards against cgroup and /proc/stat accounting disagreeing
/// by a few ticks: shares never exceed the node's energy.
/// </summary>
public static class NodeSplit
{
    /// <returns>The unattributed remainder; <paramref name="shares"/>[j] gets job j's part.</returns>
    public static ulong ByCpuTime(ulong energy, ReadOnlySpan<ulong> jobCpuNs, ulong nodeBusyNs, Span<ulong> shares)
    {
        ulong known = 0;
        foreach (ulong c in jobCpuNs) known += c;
        ulong denominator = Math.Max(nodeBusyNs, known);
        ulong rest = energy;
        for (int j = 0; j < jobCpuNs.Length; j++)
        {
            ulong s = denominator == 0 ? 0 : Part(energy, jobCpuNs[j], denominator);
            shares[j] = s;
            rest -= s;
        }
        return rest;
    }

    /// <summary>floor(E × part / denominator) without overflow; 0 when the denominator is 0.</summary>
    public static ulong Part(ulong energy, ulong part, ulong denominator) =>
        denominator == 0 ? 0 : (ulong)((UInt128)energy * part / denominator);

    /// <summary>The denominator of <see cref="ByCpuTime"/> (steps are split with the same one).</summary>
    public static ulong Denominator(ReadOnlySpan<ulong> jobCpuNs, ulong nodeBusyNs)
    {
        ulong known = 0;
        foreach (ulong c in jobCpuNs) known += c;
        return Math.Max(nodeBusyNs, known);
    }
}
