using System.Globalization;
using System.Runtime.InteropServices;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>A RAPL event of the <c>power</c> PMU: <c>events/energy-pkg</c> = <c>event=0x02</c>, its <c>.scale</c> (J per count) and <c>.unit</c>.</summary>
public sealed record PerfEvent(string Name, ResourceKind Kind, ulong Config, double JoulesPerUnit);

/// <summary>The <c>power</c> PMU as sysfs describes it: its dynamic type number, its energy events and the CPUs (one per package or die) that count them.</summary>
public sealed record PerfPmu(string Directory, int Type, IReadOnlyList<PerfEvent> Events, IReadOnlyList<int> Cpus)
{
    public const string Name = "power";

    public sealed record Result(PerfPmu? Pmu, IReadOnlyList<string> Problems);

    /// <summary>Reads <c>&lt;root&gt;/power/{type,cpumask,events/energy-*}</c> (root: <c>/sys/bus/event_source/devices</c>, configurable).</summary>
    public static Result Read(string root)
    {
        string dir = Path.Combine(root, Name);
        if (!System.IO.Directory.Exists(dir))
            return new Result(null, [$"perf: {dir} does not exist (no RAPL PMU: the kernel lacks perf_events RAPL support for this CPU, or runs in a VM that hides it)"]);
        var problems = new List<string>();
        if (!int.TryParse(TextFile.ReadTrimmed(Path.Combine(dir, "type")), NumberStyles.None, CultureInfo.InvariantCulture, out int type))
            return new Result(null, [$"perf: {dir}/type unreadable"]);
        if (!CpuTopology.TryParseList(TextFile.ReadTrimmed(Path.Combine(dir, "cpumask")) ?? "", out var cpus))
            return new Result(null, [$"perf: {dir}/cpumask unreadable"]);
        var events = new List<PerfEvent>();
        string eventsDir = Path.Combine(dir, "events");
        var names = System.IO.Directory.Exists(eventsDir)
            ? System.IO.Directory.GetFiles(eventsDir, "energy-*").Select(Path.GetFileName).Where(n => !n!.Contains('.')).Order(StringComparer.Ordinal)
            : Enumerable.Empty<string?>();
        foreach (string? name in names)
        {
            string path = Path.Combine(eventsDir, name!);
            ResourceKind? kind = name switch
            {
                "energy-pkg" => ResourceKind.CpuPackage,
                "energy-cores" => ResourceKind.CpuCores,
                "energy-gpu" => ResourceKind.Uncore,
                "energy-ram" => ResourceKind.Dram,
                "energy-psys" => ResourceKind.Psys,
                _ => null,
            };
            if (kind is null) { problems.Add($"perf: {path}: unknown RAPL event, ignored"); continue; }
            string spec = TextFile.ReadTrimmed(path) ?? "";
            if (!TryParseEvent(spec, out ulong config)) { problems.Add($"perf: {path}: '{spec}' is not event=<number>, ignored"); continue; }
            string unit = TextFile.ReadTrimmed(path + ".unit") ?? "";
            if (unit != "Joules") { problems.Add($"perf: {path}.unit is '{unit}', not Joules: ignored"); continue; }
            string scaleText = TextFile.ReadTrimmed(path + ".scale") ?? "";
            if (!double.TryParse(scaleText, NumberStyles.Float, CultureInfo.InvariantCulture, out double scale) || !(scale > 0) || !double.IsFinite(scale))
            {
                problems.Add($"perf: {path}.scale '{scaleText}' is not a positive number: ignored");
                continue;
            }
            events.Add(new PerfEvent(name!, kind.Value, config, scale));
        }
        if (events.Count == 0) return new Result(null, [.. problems, $"perf: {eventsDir} has no energy event"]);
        return new Result(new PerfPmu(dir, type, events, cpus), problems);
    }

    private static bool TryParseEvent(string spec, out ulong config)
    {
        config = 0;
        foreach (string term in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = term.IndexOf('=');
            if (eq < 0 || term[..eq] != "event") return false; // the power PMU's events are a bare event code
            string v = term[(eq + 1)..];
            bool ok = v.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
                ? ulong.TryParse(v.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out config)
                : ulong.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out config);
            if (!ok) return false;
        }
        return spec.Length > 0;
    }
}

/// <summary>
/// RAPL through perf_events: one <c>perf_event_open</c> per (package or die, domain) on the PMU's cpumask CPU,
/// then an 8-byte <c>read</c> per counter and tick. Counts are 64-bit in the event's <c>.scale</c> unit (2^-32 J on
/// x86); the kernel folds the 32-bit hardware wrap into them, so the count wraps only at 2^64 (modulus 0, 2^32 J
/// after the open: ~99 days at 500 W, within a permanent sampler's life).
/// <see cref="Read"/> keeps no state besides the descriptors: it may run on two threads (the start-up cross-check).
/// </summary>
public sealed class PerfSource : IEnergySource
{
    private readonly int[] _fds;

    public string Name => "rapl";
    public IReadOnlyList<EnergyChannel> Channels { get; }

    /// <summary>Over descriptors already open: <see cref="Open"/>'s perf events, or (tests) files replaying counts a
    /// fresh event would take months to reach.</summary>
    internal PerfSource(int[] fds, EnergyChannel[] channels)
    {
        _fds = fds;
        Channels = channels;
    }

    public unsafe void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        for (int i = 0; i < _fds.Length; i++)
        {
            ulong v;
            ok[i] = RaplNative.ReadCounter(_fds[i], &v, 8) == 8;
            raw[i] = v;
        }
    }

    public void Dispose()
    {
        foreach (int fd in _fds) RaplNative.close(fd);
    }

    public sealed record Result(PerfSource? Source, IReadOnlyList<string> Problems);

    /// <summary>Opens every energy event of <paramref name="pmu"/> on each CPU of its cpumask (psys once: one platform counter).</summary>
    public static Result Open(PerfPmu pmu, CpuTopology topology, string procfsRoot)
    {
        var problems = new List<string>();
        var fds = new List<int>();
        var channels = new List<EnergyChannel>();
        for (int k = 0; k < pmu.Cpus.Count; k++)
        {
            int cpu = pmu.Cpus[k];
            string unitId = UnitId(topology, cpu, k);
            foreach (var ev in pmu.Events)
            {
                if (ev.Kind == ResourceKind.Psys && k > 0) continue;
                int fd = OpenEvent(pmu.Type, ev.Config, cpu, out int errno);
                if (fd < 0)
                {
                    problems.Add(Refusal(pmu, ev, cpu, errno, procfsRoot));
                    continue;
                }
                fds.Add(fd);
                var resource = new ResourceId(ev.Kind, ev.Kind == ResourceKind.Psys ? "0" : unitId);
                channels.Add(new EnergyChannel(resource, MeasurementInterface.Perf, ev.JoulesPerUnit, 0, $"{PerfPmu.Name}/{ev.Name}/ on cpu {cpu}"));
            }
        }
        if (fds.Count == 0) return new Result(null, problems);
        return new Result(new PerfSource(fds.ToArray(), channels.ToArray()), problems);
    }

    /// <summary>The unit's resource id as the other interfaces name it: the package, or package-die-N on multi-die packages.</summary>
    private static string UnitId(CpuTopology topology, int cpu, int index)
    {
        var c = topology.Cpus.FirstOrDefault(x => x.Cpu == cpu);
        if (c is null) return index.ToString(CultureInfo.InvariantCulture);
        int dies = topology.Cpus.Where(x => x.Package == c.Package).Select(x => x.Die).Distinct().Count();
        return dies > 1 ? $"{c.Package}-die-{c.Die}" : c.Package.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>perf_event_open(attr{type, config}, pid -1, cpu, group -1, FD_CLOEXEC): a system-wide counter on one CPU.</summary>
    internal static unsafe int OpenEvent(int type, ulong config, int cpu, out int errno)
    {
        // struct perf_event_attr: type u32 @0, size u32 @4, config u64 @8; the rest zero (counting, enabled at open).
        // 128 bytes = PERF_ATTR_SIZE_VER7; kernels accept a larger struct whose extra bytes are zero.
        const int size = 128;
        byte* attr = stackalloc byte[size];
        new Span<byte>(attr, size).Clear();
        *(uint*)attr = (uint)type;
        *(uint*)(attr + 4) = size;
        *(ulong*)(attr + 8) = config;
        nint fd = RaplNative.syscall(RaplNative.SYS_perf_event_open, attr, -1, cpu, -1, RaplNative.PERF_FLAG_FD_CLOEXEC);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return (int)fd;
    }

    /// <summary>Why the kernel refused, in one sentence with the fix.</summary>
    internal static string Refusal(PerfPmu pmu, PerfEvent ev, int cpu, int errno, string procfsRoot)
    {
        string what = $"perf: perf_event_open({PerfPmu.Name}/{ev.Name}/ type {pmu.Type} config 0x{ev.Config:x}, cpu {cpu})";
        return errno switch
        {
            RaplNative.EACCES or RaplNative.EPERM =>
                $"{what} refused ({RaplNative.Describe(errno)}): a system-wide counter needs root or CAP_PERFMON, or kernel.perf_event_paranoid <= 0 "
                + $"(it is {TextFile.ReadTrimmed(Path.Combine(procfsRoot, "sys", "kernel", "perf_event_paranoid")) ?? "unreadable"}); run the sampler as root or set the sysctl",
            RaplNative.ENOENT or RaplNative.EOPNOTSUPP or RaplNative.EINVAL =>
                $"{what}: the kernel does not offer this event ({RaplNative.Describe(errno)}); use rapl_interface = \"powercap\" or \"msr\"",
            RaplNative.ENODEV => $"{what}: cpu {cpu} is offline or cannot count this PMU ({RaplNative.Describe(errno)}); bring it online or check {pmu.Directory}/cpumask",
            RaplNative.ENOSYS => $"{what}: this kernel has no perf_events (CONFIG_PERF_EVENTS); use rapl_interface = \"powercap\" or \"msr\"",
            RaplNative.EMFILE => $"{what}: too many open files; raise the sampler's file limit (ulimit -n)",
            _ => $"{what} failed: {RaplNative.Describe(errno)}",
        };
    }
}
