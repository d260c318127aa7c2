using System.Globalization;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>
/// The three ways to read RAPL on Linux, opened from the configured roots, and the choice between them
/// (<c>[sources] rapl_interface</c>). "auto" takes the first present in <see cref="AutoOrder"/>; an interface is
/// present for "auto" only when it has a package counter (a VM may expose a PMU with a lone psys event that never counts).
/// </summary>
public static class RaplInterfaces
{
    /// <summary>
    /// Cheapest first, from `make bench` (bench/rapl-interfaces.sh: CPU per tick for each interface on the same
    /// 2 packages × 3 domains; figures in bench/README.md): perf reads 8 binary bytes per counter and its 64-bit
    /// counts wrap only at 2^64 (2^32 J); msr reads 8 binary bytes but needs the msr module and wraps at 32 bits; powercap formats
    /// and parses text.
    /// </summary>
    public static readonly MeasurementInterface[] AutoOrder = [MeasurementInterface.Perf, MeasurementInterface.Msr, MeasurementInterface.Powercap];

    public sealed record Opened(MeasurementInterface Interface, IEnergySource? Source, IReadOnlyList<string> Problems)
    {
        public bool HasPackage => Source?.Channels.Any(c => c.Resource.Kind == ResourceKind.CpuPackage) == true;
    }

    /// <summary>The chosen source (null when none), what went wrong, and the cross-check of the other interfaces (null when none).</summary>
    public sealed record Choice(IEnergySource? Source, IReadOnlyList<string> Problems, RaplCrossCheck? CrossCheck, string Describe);

    public static MeasurementInterface Parse(string wire) => wire switch
    {
        "perf" => MeasurementInterface.Perf,
        "msr" => MeasurementInterface.Msr,
        "powercap" => MeasurementInterface.Powercap,
        _ => throw new ArgumentOutOfRangeException(nameof(wire), wire, "rapl_interface"),
    };

    /// <summary>Opens one interface (powercap includes its MMIO zones).</summary>
    /// <param name="topology">The node's CPUs when the caller has read them already (perf and msr both need them: on a
    /// large node that is 4 sysfs files per CPU, so <see cref="Choose"/> reads them once).</param>
    public static Opened Open(MeasurementInterface iface, AlumetConfig cfg, Func<CpuTopology>? topology = null)
    {
        topology ??= () => CpuTopology.Read(cfg.Paths.CpuRoot);
        switch (iface)
        {
            case MeasurementInterface.Powercap:
            {
                var found = PowercapDiscovery.Discover(cfg.Paths.PowercapRoot);
                return new Opened(iface, found.Zones.Count > 0 ? new RaplSource(found.Zones) : null,
                    found.Problems.Select(p => "powercap: " + p).ToArray());
            }
            case MeasurementInterface.Msr:
            {
                var found = MsrSource.Discover(cfg.Paths.MsrRoot, topology(), CpuIdentity.Read(cfg.Paths.Cpuinfo), cfg.Sources.MsrDramUnit);
                return new Opened(iface, found.Source, found.Problems);
            }
            case MeasurementInterface.Perf:
            {
                var pmu = PerfPmu.Read(cfg.Paths.PerfPmuRoot);
                if (pmu.Pmu is null) return new Opened(iface, null, pmu.Problems);
                var opened = PerfSource.Open(pmu.Pmu, topology(), cfg.Paths.ProcfsRoot);
                return new Opened(iface, opened.Source, [.. pmu.Problems, .. opened.Problems]);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(iface));
        }
    }

    /// <summary>
    /// Opens every interface, keeps the configured one (or the cheapest present), compares the domain sets now and
    /// prepares the energy comparison (<see cref="RaplCrossCheck"/>), which owns its own descriptors.
    /// </summary>
    public static Choice Choose(AlumetConfig cfg)
    {
        var cpus = new Lazy<CpuTopology>(() => CpuTopology.Read(cfg.Paths.CpuRoot), LazyThreadSafetyMode.None);
        var all = AutoOrder.Select(i => Open(i, cfg, () => cpus.Value)).ToList();
        bool auto = cfg.Sources.RaplInterface == "auto";
        var chosen = auto ? all.FirstOrDefault(o => o.HasPackage) : all.First(o => o.Interface == Parse(cfg.Sources.RaplInterface));
        var problems = new List<string>();
        string describe = auto ? $"rapl_interface = \"auto\" ({string.Join(", ", AutoOrder.Select(i => i.Wire()))})" : $"rapl_interface = \"{cfg.Sources.RaplInterface}\"";
        if (chosen?.Source is null)
        {
            foreach (var o in all) { o.Source?.Dispose(); if (auto || o.Interface == chosen?.Interface) problems.AddRange(o.Problems); }
            if (auto)
                foreach (var o in all.Where(o => o.Source is not null))
                    problems.Add($"{o.Interface.Wire()}: no package counter ({string.Join(", ", o.Source!.Channels.Select(c => c.Resource))}): not used by \"auto\"");
            return new Choice(null, problems, null, describe);
        }
        problems.AddRange(chosen.Problems);
        if (auto)
            foreach (var cheaper in all.TakeWhile(o => o != chosen))
                problems.Add($"{cheaper.Interface.Wire()} not used: " + (cheaper.Source is null
                    ? string.Join("; ", cheaper.Problems)
                    : $"no package counter ({string.Join(", ", cheaper.Source.Channels.Select(c => c.Resource))})"));
        if (auto)
            problems.Add($"RAPL read through {chosen.Interface.Wire()} (rapl_interface = \"auto\": the cheapest present of {string.Join(", ", AutoOrder.Select(i => i.Wire()))})");

        var others = all.Where(o => o != chosen && o.Source is not null).Select(o => o.Source!).ToList();
        // The cross-check reads on its own thread and outlives nothing: it reopens the chosen interface rather than
        // share descriptors the sampler closes at job end; when it is first used, so that the reopening is not on the
        // sampler's path to its first read.
        var chosenInterface = chosen.Interface;
        var check = others.Count > 0 ? new RaplCrossCheck(() => Open(chosenInterface, cfg, () => cpus.Value).Source, others, chosenInterface, cfg.Sampler.MaxPowerW) : null;
        return new Choice(chosen.Source, problems, check, describe);
    }
}

/// <summary>
/// At start, when several RAPL interfaces are present: do they report the same domains, and the same energy over a
/// short window? Disagreements are logged once (one line each); the sampler keeps the chosen interface either way.
/// Tolerance: 2 % of the energy plus 4 counts of the coarser unit, since the interfaces are read a few µs apart and
/// RAPL refreshes every ~1 ms (a read can fall on either side of an update at each end of the window).
/// </summary>
public sealed class RaplCrossCheck : IDisposable
{
    public const double Tolerance = 0.02;
    private readonly Func<IEnergySource?> _reopenChosen;
    private readonly IEnergySource[] _others;
    private IEnergySource[]? _sources;
    private readonly MeasurementInterface _chosen;
    private readonly double _maxPowerW;
    private ulong[][] _first = [];
    private long _firstNs;
    private int _done, _disposed;

    /// <param name="reopenChosen">Opens the chosen interface again (its own descriptors), at the first comparison; null when it cannot.</param>
    /// <param name="others">The other interfaces present, owned by the check from here.</param>
    public RaplCrossCheck(Func<IEnergySource?> reopenChosen, IReadOnlyList<IEnergySource> others, MeasurementInterface chosen, double maxPowerW)
    {
        _reopenChosen = reopenChosen;
        _others = others.ToArray();
        _chosen = chosen;
        _maxPowerW = maxPowerW;
    }

    /// <summary>The chosen interface (reopened) first, then the others; empty when the chosen one could not be reopened.</summary>
    private IEnergySource[] Sources => _sources ??= _reopenChosen() is { } again ? [again, .. _others] : [];

    private static MeasurementInterface Iface(IEnergySource s) => s.Channels.Count > 0 ? s.Channels[0].Interface : MeasurementInterface.Powercap;

    private static string Name(IEnergySource s) => Iface(s) is MeasurementInterface.PowercapMmio ? "powercap" : Iface(s).Wire();

    /// <summary>Differences between the domain sets, one sentence per interface that differs from the chosen one.</summary>
    public IReadOnlyList<string> CompareDomains()
    {
        var messages = new List<string>();
        var chosen = Sources[0].Channels.Select(c => c.Resource.ToString()).ToHashSet();
        foreach (var other in Sources.Skip(1))
        {
            var theirs = other.Channels.Select(c => c.Resource.ToString()).ToHashSet();
            var onlyThem = theirs.Except(chosen).Order(StringComparer.Ordinal).ToArray();
            var onlyUs = chosen.Except(theirs).Order(StringComparer.Ordinal).ToArray();
            if (onlyThem.Length == 0 && onlyUs.Length == 0) continue;
            var parts = new List<string>();
            if (onlyUs.Length > 0) parts.Add($"only {_chosen.Wire()} has {string.Join(", ", onlyUs)}");
            if (onlyThem.Length > 0) parts.Add($"only {Name(other)} has {string.Join(", ", onlyThem)}");
            messages.Add($"RAPL cross-check: {_chosen.Wire()} and {Name(other)} report different domains: {string.Join("; ", parts)} (the sampler uses {_chosen.Wire()})");
        }
        return messages;
    }

    /// <summary>First reading of every interface.</summary>
    public void Begin(long monotonicNs)
    {
        _first = Sources.Select(s => ReadRaw(s, monotonicNs)).ToArray();
        _firstNs = monotonicNs;
    }

    private static ulong[] ReadRaw(IEnergySource s, long ns)
    {
        var raw = new ulong[s.Channels.Count];
        var ok = new bool[s.Channels.Count];
        s.Read(raw, ok, ns);
        for (int i = 0; i < raw.Length; i++) if (!ok[i]) raw[i] = ulong.MaxValue; // marks a failed read
        return raw;
    }

    /// <summary>Second reading; one sentence per domain whose energy differs beyond the tolerance, and a summary line.</summary>
    public IReadOnlyList<string> Finish(long monotonicNs)
    {
        long elapsed = monotonicNs - _firstNs;
        var second = Sources.Select(s => ReadRaw(s, monotonicNs)).ToArray();
        var energy = new Dictionary<string, (double J, double Unit)>[Sources.Length];
        for (int s = 0; s < Sources.Length; s++)
        {
            energy[s] = new Dictionary<string, (double, double)>();
            var chans = Sources[s].Channels;
            for (int i = 0; i < chans.Count; i++)
            {
                if (_first[s][i] == ulong.MaxValue || second[s][i] == ulong.MaxValue) continue;
                // The same wrap-safe accumulator as the sampler: one implementation of the wrap rule.
                var counter = EnergyCounter.For(chans[i], _maxPowerW);
                counter.Read(_first[s][i], _firstNs);
                var step = counter.Read(second[s][i], monotonicNs);
                if (step.Implausible) continue; // a reset in the window: nothing to compare
                energy[s][chans[i].Resource.ToString()] = (step.Delta * chans[i].JoulesPerUnit, chans[i].JoulesPerUnit);
            }
        }
        var messages = new List<string>();
        int compared = 0;
        string window = (elapsed / 1e9).ToString("0.00", CultureInfo.InvariantCulture);
        for (int s = 1; s < Sources.Length; s++)
        {
            foreach (var (key, mine) in energy[0].OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                if (!energy[s].TryGetValue(key, out var theirs)) continue;
                compared++;
                double diff = Math.Abs(mine.J - theirs.J);
                double allowed = Tolerance * Math.Max(mine.J, theirs.J) + 4 * Math.Max(mine.Unit, theirs.Unit);
                if (diff <= allowed) continue;
                double pct = 100 * diff / Math.Max(Math.Max(mine.J, theirs.J), double.Epsilon);
                messages.Add($"RAPL cross-check over {window} s: {key} {_chosen.Wire()} {J(mine.J)} J, {Name(Sources[s])} {J(theirs.J)} J "
                    + $"({pct.ToString("0.#", CultureInfo.InvariantCulture)} % apart, tolerance {Tolerance * 100:0} %); the sampler uses {_chosen.Wire()}");
            }
        }
        if (messages.Count == 0 && compared > 0)
            messages.Add($"RAPL cross-check over {window} s: {string.Join(", ", Sources.Select(Name))} agree on {compared} domain reading(s) within {Tolerance * 100:0} %");
        return messages;
    }

    private static string J(double j) => j.ToString("0.000000", CultureInfo.InvariantCulture);

    /// <summary>
    /// Logs the domain comparison now and the energy comparison after <paramref name="window"/>, on a background thread,
    /// once. The sampler starts it after its first reads (<see cref="Sampling.Sampler.Run"/>).
    /// </summary>
    public void Start(TimeSpan window)
    {
        if (Interlocked.Exchange(ref _done, 1) == 1) return;
        if (Sources.Length == 0)
        {
            Dispose(); // the chosen interface did not open a second time: nothing to compare it with
            return;
        }
        foreach (string m in CompareDomains()) Log.Warn(m);
        Begin(Clock.MonotonicNs());
        var thread = new Thread(() =>
        {
            try
            {
                Thread.Sleep(window);
                foreach (string m in Finish(Clock.MonotonicNs()))
                    if (m.Contains(" apart", StringComparison.Ordinal)) Log.Warn(m); else Log.Info(m);
            }
            finally { Dispose(); }
        }) { IsBackground = true, Name = "rapl-cross-check" };
        thread.Start();
    }

    /// <summary>Closes the descriptors of a check that was never started (a started one closes its own when done).</summary>
    public void DisposeUnstarted()
    {
        if (Interlocked.Exchange(ref _done, 1) == 0) Dispose();
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        foreach (var s in _sources is { Length: > 0 } all ? all : _others) s.Dispose();
    }
}
