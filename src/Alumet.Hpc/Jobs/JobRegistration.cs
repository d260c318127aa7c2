using System.Globalization;
using System.Text;
using Alumet.Hpc.Schedulers;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// What a prolog tells the node sampler about a job, and what a restarted sampler recovers from the job's state
/// directory (<see cref="File"/>). One line of <c>key=value</c> tokens; every value is validated with the hooks'
/// narrow alphabets (<see cref="SchedulerInput"/>) on the way in, so nothing in it can name a foreign path.
/// </summary>
/// <param name="Gpus">The scheduler's GPU list for this node (indices, e.g. "0,2"), or null.</param>
/// <param name="Sluid">Slurm's SLUID (SLURM_JOB_SLUID, Slurm ≥ 25.11), or null.</param>
/// <param name="Exclusive">Charge the whole node to the job (exclusive allocations, <c>exec</c>).</param>
/// <param name="Raw">The job asked for raw (every read, up to 1 kHz) storage.</param>
/// <param name="StartWallNs">When the prolog registered the job, Unix ns.</param>
public sealed record JobRegistration(JobIdentity Job, string? Gpus, string? Sluid, bool Exclusive, bool Raw, long StartWallNs)
{
    /// <summary>The registration as a restarted sampler finds it, in the job's state directory.</summary>
    public const string File = "registration";

    /// <summary><c>exec</c>: the command's own cgroup (<see cref="Attribution.ExecCgroup"/>), which the sampler reads
    /// only where exec creates it under its own cgroup root (checked at registration); null for scheduler jobs, whose
    /// cgroups their scheduler's locator finds.</summary>
    public string? Cgroup { get; init; }

    /// <summary><c>exec</c>: the process that ends the job; a sampler that finds it gone ends the job (partial) itself.</summary>
    public SamplerPid? Owner { get; init; }

    /// <summary><c>exec</c>: the whole node is the job's for the periods in which no other job is registered (a lone
    /// exec is charged as it always was); with other jobs, the CPU-time split.</summary>
    public bool ExclusiveWhenAlone { get; init; }

    /// <summary>A prolog's registration: the wall time (Unix ns) after which the sampler must not apply it, because the
    /// prolog has given up on it by then (<see cref="SamplerLauncher.Start"/>); 0 for none (recovery, in-process jobs).</summary>
    public long ApplyByWallNs { get; init; }

    /// <summary>The same moment on <c>CLOCK_BOOTTIME</c> (<see cref="Core.Clock.BootNs"/>), which no clock step moves: a sampler
    /// that reads it goes by it alone (<see cref="NodeSampler.Late"/>). A prolog writes both: <c>until=</c> for a sampler
    /// of an earlier version, which knows only that one; 0 for none (a prolog of an earlier version).</summary>
    public long ApplyByBootNs { get; init; }

    public string Key => KeyOf(Job.Scheduler, Job.JobId);
    public static string KeyOf(string scheduler, string jobId) => $"{scheduler}/{jobId}";

    public string ToLine()
    {
        var sb = new StringBuilder();
        sb.Append("scheduler=").Append(Job.Scheduler)
          .Append(" cluster=").Append(Job.Cluster)
          .Append(" job=").Append(Job.JobId)
          .Append(" user=").Append(Job.User)
          .Append(" uid=").Append(Job.Uid.ToString(CultureInfo.InvariantCulture))
          .Append(" node=").Append(Job.Node)
          .Append(" exclusive=").Append(Exclusive ? '1' : '0')
          .Append(" raw=").Append(Raw ? '1' : '0')
          .Append(" start=").Append(StartWallNs.ToString(CultureInfo.InvariantCulture));
        if (Job.RunId.Length > 0) sb.Append(" run=").Append(Job.RunId);
        if (!string.IsNullOrEmpty(Gpus)) sb.Append(" gpus=").Append(Gpus);
        if (Sluid is not null) sb.Append(" sluid=").Append(Sluid);
        if (Cgroup is not null) sb.Append(" cgroup=").Append(Cgroup);
        if (Owner is { } o) sb.Append(" owner=").Append(o.Pid.ToString(CultureInfo.InvariantCulture)).Append('.').Append(o.StartTime.ToString(CultureInfo.InvariantCulture));
        if (ExclusiveWhenAlone) sb.Append(" alone=exclusive");
        if (ApplyByWallNs > 0) sb.Append(" until=").Append(ApplyByWallNs.ToString(CultureInfo.InvariantCulture));
        if (ApplyByBootNs > 0) sb.Append(" until_boot=").Append(ApplyByBootNs.ToString(CultureInfo.InvariantCulture));
        // The job's name is user text (spaces, '=', newlines): one hex token, so it can never be read as another key.
        if (Job.JobName.Length > 0) sb.Append(" name=").Append(Convert.ToHexString(Encoding.UTF8.GetBytes(Job.JobName)));
        return sb.ToString();
    }

    /// <summary>Parses <see cref="ToLine"/>'s format; null with <paramref name="error"/> when a value is not acceptable.</summary>
    public static JobRegistration? Parse(string line, out string? error)
    {
        var kv = Tokens(line);
        string? Get(string k) => kv.TryGetValue(k, out string? v) ? v : null;
        error = null;
        string? scheduler = Get("scheduler"), cluster = Get("cluster"), job = Get("job"), user = Get("user"), node = Get("node");
        if (!SchedulerNames.IsKnown(scheduler)) error = $"scheduler {SchedulerInput.Quote(scheduler)} is not {string.Join(", ", SchedulerNames.All)}";
        else if (!SchedulerInput.IsJobId(job)) error = $"job {SchedulerInput.Quote(job)} is not a job id";
        else if (!SchedulerInput.IsName(cluster)) error = $"cluster {SchedulerInput.Quote(cluster)} is not a cluster name";
        else if (!SchedulerInput.IsUserName(user)) error = $"user {SchedulerInput.Quote(user)} is not a user name";
        else if (!SchedulerInput.IsName(node)) error = $"node {SchedulerInput.Quote(node)} is not a node name";
        else if (!SchedulerInput.TryParseId(Get("uid"), out _)) error = $"uid {SchedulerInput.Quote(Get("uid"))} is not a uid";
        else if (Get("gpus") is { } g && !Sources.Nvml.GpuAllocation.TryParse(g, out _, out string? why)) error = $"gpus {SchedulerInput.Quote(g)} is not a GPU list: {why}";
        else if (Get("sluid") is { } s && !SchedulerInput.IsToken(s)) error = $"sluid {SchedulerInput.Quote(s)} is not a SLUID";
        else if (Get("run") is { } r && !RunId.IsValid(r)) error = $"run {SchedulerInput.Quote(r)} is not a run id";
        else if (Get("name") is { } n && (n.Length % 2 != 0 || !n.All(char.IsAsciiHexDigit))) error = "name is not hex-encoded";
        else if (Get("cgroup") is { } cg && !IsCgroupPath(cg)) error = $"cgroup {SchedulerInput.Quote(cg)} is not an absolute cgroup path";
        else if (Get("owner") is { } ow && ParseOwner(ow) is null) error = $"owner {SchedulerInput.Quote(ow)} is not pid.starttime";
        else if (Get("until") is { } u && !(long.TryParse(u, NumberStyles.None, CultureInfo.InvariantCulture, out long by) && by > 0)) error = $"until {SchedulerInput.Quote(u)} is not a wall time in ns";
        else if (Get("until_boot") is { } ub && !(long.TryParse(ub, NumberStyles.None, CultureInfo.InvariantCulture, out long bb) && bb > 0)) error = $"until_boot {SchedulerInput.Quote(ub)} is not a time since boot in ns";
        if (error is not null) return null;
        SchedulerInput.TryParseId(Get("uid"), out int uid);
        long.TryParse(Get("start"), NumberStyles.None, CultureInfo.InvariantCulture, out long start);
        string name = Get("name") is { } hex ? JobIdentity.RecordedName(Encoding.UTF8.GetString(Convert.FromHexString(hex))) : "";
        return new JobRegistration(new JobIdentity(scheduler!, cluster!, job!, user!, uid, node!, Get("run") ?? "") { JobName = name }, Get("gpus"), Get("sluid"),
            Get("exclusive") == "1", Get("raw") == "1", start)
        {
            Cgroup = Get("cgroup"), Owner = Get("owner") is { } owner ? ParseOwner(owner) : null, ExclusiveWhenAlone = Get("alone") == "exclusive",
            ApplyByWallNs = Get("until") is { } until ? long.Parse(until, NumberStyles.None, CultureInfo.InvariantCulture) : 0,
            ApplyByBootNs = Get("until_boot") is { } untilBoot ? long.Parse(untilBoot, NumberStyles.None, CultureInfo.InvariantCulture) : 0,
        };
    }

    /// <summary>An absolute, normalised path of cgroup-directory characters (where it may be is checked by the sampler).</summary>
    private static bool IsCgroupPath(string p) =>
        p.Length is > 1 and <= 512 && p[0] == '/' && Path.GetFullPath(p) == p
        && p.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '.' or ',');

    private static SamplerPid? ParseOwner(string s)
    {
        int dot = s.IndexOf('.');
        return dot > 0 && SchedulerInput.TryParseId(s[..dot], out int pid) && pid > 0
            && ulong.TryParse(s[(dot + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out ulong st)
            ? new SamplerPid(pid, st) : null;
    }

    /// <summary>"a=b c=d" → {a: b, c: d}; a repeated key keeps its first value.</summary>
    public static Dictionary<string, string> Tokens(string line)
    {
        var kv = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string t in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = t.IndexOf('=');
            if (eq > 0) kv.TryAdd(t[..eq], t[(eq + 1)..]);
        }
        return kv;
    }
}
