using System.Globalization;

namespace Alumet.Hpc.Sources.Nvml;

/// <summary>Who a GPU's energy is charged to during one attribution period.</summary>
public enum GpuOwner
{
    /// <summary>No job known to hold the GPU (idle, or held by a job this sampler cannot see): consumer <c>unattributed</c>.</summary>
    Unattributed,
    /// <summary>Allocated to this sampler's job: consumer <c>job:&lt;id&gt;</c>, the whole board.</summary>
    Job,
    /// <summary>Known to be allocated to another job: consumer <c>other_jobs</c>.</summary>
    OtherJobs,
}

/// <summary>
/// The GPUs a scheduler gave a job on this node, as the scheduler names them, resolved against NVML's devices.
/// <para>Accepted entries (comma separated; ranges <c>a-b</c> of numbers allowed):</para>
/// <list type="bullet">
/// <item>a number N: the GPU behind <c>/dev/nvidiaN</c> (NVML minor number; NVML index when the minor number is
/// unknown). This is what Slurm's prolog gets in <c>SLURM_JOB_GPUS</c> (global GRES indices, which follow
/// <c>/dev/nvidia[0-N]</c> in gres.conf order, and AutoDetect's order) and in its <c>CUDA_VISIBLE_DEVICES</c> (physical
/// in the prolog; only the job's own steps see it renumbered from 0), and OAR's <c>gpudevice</c> resource property
/// (the N its job_resource_manager opens in the devices cgroup);</item>
/// <item><c>GPU-&lt;uuid&gt;</c>, a PCI bus id (<c>0000:3b:00.0</c> or NVML's <c>00000000:3B:00.0</c>);</item>
/// <item><c>MIG-GPU-&lt;uuid&gt;/gi/ci</c> (old MIG naming): the parent GPU. New-style <c>MIG-&lt;uuid&gt;</c> names do not
/// carry the parent and are reported as unmatched.</item>
/// </list>
/// <para>This is the one parser of GPU lists: the Slurm prolog's variables, OAR's <c>gpudevice</c> numbers,
/// <c>sample --gpus</c> and the node sampler's registrations all go through <see cref="TryParse"/>. Blanks around
/// entries, empty entries, <c>NoDevFiles</c> and <c>N/A</c> are harmless and skipped (a job is never refused for them);
/// any other entry outside the forms above is refused, so nothing but these narrow alphabets reaches a registration
/// line or a log line.</para>
/// <para>MIG: NVML has no per-instance energy, so a MIG slice charges its whole parent board to the job. When two jobs
/// hold slices of one GPU, each job's sampler charges that GPU entirely to its own job (the board is counted once per
/// job, not split): documented, not hidden.</para>
/// </summary>
public sealed record GpuAllocation(IReadOnlyList<string> Entries)
{
    public static readonly GpuAllocation None = new(Array.Empty<string>());

    /// <summary>Most GPUs one allocation may name, ranges expanded (a node has a few dozen at most).</summary>
    public const int MaxGpus = 64;

    /// <summary>
    /// Parses a scheduler list (see the class summary). Null, blank, <c>NoDevFiles</c> (Slurm with no GPU) and
    /// <c>N/A</c> mean none. False, with the reason in <paramref name="error"/> (a sentence fragment naming the bad
    /// entry), when an entry is none of the accepted forms or the list names more than <see cref="MaxGpus"/> GPUs.
    /// </summary>
    public static bool TryParse(string? list, out GpuAllocation allocation, out string? error)
    {
        allocation = None;
        error = null;
        if (string.IsNullOrWhiteSpace(list)) return true;
        if (list.Length > 4096)
        {
            error = "it is longer than 4096 characters";
            return false;
        }
        var entries = new List<string>();
        foreach (string raw in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (raw.Equals("NoDevFiles", StringComparison.OrdinalIgnoreCase) || raw.Equals("N/A", StringComparison.OrdinalIgnoreCase))
                continue;
            if (TryRange(raw, out int first, out int last))
            {
                for (int i = first; i <= last && entries.Count <= MaxGpus; i++) entries.Add(i.ToString(CultureInfo.InvariantCulture));
            }
            else if (IsEntry(raw))
            {
                entries.Add(raw);
            }
            else
            {
                error = $"entry '{(raw.Length > 40 ? raw[..40] + "..." : raw)}' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id";
                if (raw.Any(c => c is < ' ' or > '~')) error = "an entry holds characters other than printable ASCII";
                return false;
            }
            if (entries.Count > MaxGpus)
            {
                error = $"it names more than {MaxGpus} GPUs";
                return false;
            }
        }
        allocation = entries.Count == 0 ? None : new GpuAllocation(entries.Distinct().ToArray());
        return true;
    }

    /// <summary>A list already accepted by <see cref="TryParse"/> (a registration, a test); anything else is none.</summary>
    public static GpuAllocation Parse(string? list) => TryParse(list, out var allocation, out _) ? allocation : None;

    /// <summary>
    /// From a Slurm prolog/epilog environment: <c>SLURM_JOB_GPUS</c> (Slurm's own GPU indices), else, when it is unset
    /// or blank, <c>CUDA_VISIBLE_DEVICES</c> (physical in the prolog; the device's UUID on MIG nodes).
    /// <paramref name="variable"/> is the one read.
    /// </summary>
    public static bool TryFromSlurm(Func<string, string?> getEnvironment, out GpuAllocation allocation, out string variable, out string? error)
    {
        variable = string.IsNullOrWhiteSpace(getEnvironment("SLURM_JOB_GPUS")) ? "CUDA_VISIBLE_DEVICES" : "SLURM_JOB_GPUS";
        return TryParse(getEnvironment(variable), out allocation, out error);
    }

    /// <summary>From OAR's <c>gpudevice</c> properties of the job's resources on this node.</summary>
    public static GpuAllocation FromOarGpuDevices(IEnumerable<int> gpuDevices) =>
        Parse(string.Join(',', gpuDevices.Select(g => g.ToString(CultureInfo.InvariantCulture))));

    public bool IsEmpty => Entries.Count == 0;

    /// <summary>The entries as one list ("0,2,GPU-..."), what a registration line carries; "" for none.</summary>
    public string List => string.Join(',', Entries);

    private static bool TryRange(string s, out int first, out int last)
    {
        first = last = 0;
        int dash = s.IndexOf('-');
        return dash > 0 && IsIndex(s[..dash]) && IsIndex(s[(dash + 1)..])
            && int.TryParse(s.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out first)
            && int.TryParse(s.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out last)
            && last >= first;
    }

    private static bool IsIndex(string s) => s.Length is > 0 and <= 4 && s.All(char.IsAsciiDigit);

    /// <summary>An index, a GPU-/MIG- name (letters, digits, '-', and '/' for old MIG names) or a PCI bus id.</summary>
    private static bool IsEntry(string s)
    {
        if (IsIndex(s)) return true;
        if (s.Length is > 4 and <= 96 && (s.StartsWith("GPU-", StringComparison.OrdinalIgnoreCase) || s.StartsWith("MIG-", StringComparison.OrdinalIgnoreCase)))
            return s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '/');
        return s.Length <= 16 && GpuBusId.TryNormalize(s, out _);
    }

    /// <summary>Indices into <paramref name="devices"/> (= channel indices of the NVML source) that this allocation names.</summary>
    /// <param name="unmatched">Entries that name no device (wrong index, MIG-&lt;uuid&gt;, typo): the lead should log them once.</param>
    public bool[] Match(IReadOnlyList<GpuDevice> devices, out IReadOnlyList<string> unmatched)
    {
        var hit = new bool[devices.Count];
        var missing = new List<string>();
        foreach (string entry in Entries)
        {
            int found = -1;
            for (int i = 0; i < devices.Count && found < 0; i++)
                if (Names(entry, devices[i])) found = i;
            if (found >= 0) hit[found] = true;
            else missing.Add(entry);
        }
        unmatched = missing;
        return hit;
    }

    /// <summary>The resource ids (canonical bus ids, <see cref="GpuDevice.BusId"/>) of the GPUs this allocation names.</summary>
    public IReadOnlySet<string> ResourceIds(IReadOnlyList<GpuDevice> devices, out IReadOnlyList<string> unmatched)
    {
        bool[] hit = Match(devices, out unmatched);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < hit.Length; i++)
            if (hit[i]) ids.Add(devices[i].BusId);
        return ids;
    }

    /// <summary>
    /// The owner of each device (channel) for this job. GPUs in <paramref name="otherJobs"/> (when the caller knows other
    /// jobs' GPUs, e.g. from their state) become <see cref="GpuOwner.OtherJobs"/>; every other GPU is
    /// <see cref="GpuOwner.Unattributed"/>. The sampler does not look up other jobs by default: finding them means
    /// scheduler queries or reading other jobs' environments, too costly and fragile for each period, so an idle-looking
    /// GPU used by another job is reported as unattributed.
    /// </summary>
    public GpuOwner[] Owners(IReadOnlyList<GpuDevice> devices, out IReadOnlyList<string> unmatched, GpuAllocation? otherJobs = null)
    {
        bool[] mine = Match(devices, out unmatched);
        bool[] theirs = otherJobs is null ? new bool[devices.Count] : otherJobs.Match(devices, out _);
        var owners = new GpuOwner[devices.Count];
        for (int i = 0; i < owners.Length; i++)
            owners[i] = mine[i] ? GpuOwner.Job : theirs[i] ? GpuOwner.OtherJobs : GpuOwner.Unattributed;
        return owners;
    }

    private static bool Names(string entry, GpuDevice d)
    {
        if (int.TryParse(entry, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            return (d.MinorNumber >= 0 ? d.MinorNumber : d.Index) == n;
        if (entry.StartsWith("MIG-GPU-", StringComparison.OrdinalIgnoreCase))
        {
            int slash = entry.IndexOf('/');
            string parent = slash > 0 ? entry[4..slash] : entry[4..];
            return parent.Equals(d.Uuid, StringComparison.OrdinalIgnoreCase);
        }
        if (entry.StartsWith("GPU-", StringComparison.OrdinalIgnoreCase))
            return entry.Equals(d.Uuid, StringComparison.OrdinalIgnoreCase);
        return GpuBusId.TryNormalize(entry, out string busId) && busId == d.BusId;
    }
}

/// <summary>Splits GPU energy between the node's jobs for one period. Pure, allocation-free.</summary>
public static class GpuAttribution
{
    /// <summary>
    /// The job (index into <paramref name="jobOwns"/>) that a GPU channel's energy goes to this period: an exclusive
    /// job holds every GPU; otherwise the first job whose allocation (<see cref="GpuAllocation.Owners"/>) names the GPU
    /// (a MIG board shared by two jobs goes to the first registered); -1 when no registered job holds it.
    /// </summary>
    public static int Owner(int channel, int exclusiveJob, IReadOnlyList<bool[]> jobOwns)
    {
        if (exclusiveJob >= 0) return exclusiveJob;
        for (int j = 0; j < jobOwns.Count; j++)
            if (jobOwns[j][channel]) return j;
        return -1;
    }

    /// <summary>The whole delta to <paramref name="owner"/>'s share (none: all unattributed); returns the unattributed part, so Σ shares + unattributed = delta exactly.</summary>
    public static ulong Split(ulong delta, int owner, Span<ulong> shares)
    {
        if (owner < 0) return delta;
        shares[owner] = delta;
        return 0;
    }
}
