using System.Globalization;
using System.Text.RegularExpressions;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>One logical CPU as sysfs describes it (<c>cpuN/topology/physical_package_id</c>, <c>die_id</c>, <c>core_id</c>, <c>cpuN/online</c>).</summary>
public sealed record LogicalCpu(int Cpu, int Package, int Die, int Core, bool Online);

/// <summary>
/// The CPUs of the node, read once from <c>/sys/devices/system/cpu</c> (configurable: tests generate the tree).
/// RAPL counters are per package (per die on multi-die Intel parts) and must be read on a CPU of that package:
/// <see cref="Leads"/> picks the lowest-numbered online CPU of each, so a package whose usual lead CPU was taken
/// offline is still read through another one.
/// </summary>
public sealed partial class CpuTopology
{
    [GeneratedRegex(@"^cpu(\d+)$")]
    private static partial Regex CpuDir();

    public IReadOnlyList<LogicalCpu> Cpus { get; }

    public CpuTopology(IReadOnlyList<LogicalCpu> cpus) => Cpus = cpus;

    /// <summary>Reads <paramref name="cpuRoot"/>; a CPU without a topology directory (offline on old kernels) keeps what it has.</summary>
    public static CpuTopology Read(string cpuRoot)
    {
        var cpus = new List<LogicalCpu>();
        if (!Directory.Exists(cpuRoot)) return new CpuTopology(cpus);
        foreach (string dir in Directory.GetDirectories(cpuRoot))
        {
            var m = CpuDir().Match(Path.GetFileName(dir));
            if (!m.Success) continue;
            int cpu = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            // cpu0 usually has no `online` file: it cannot be taken offline.
            string? online = TextFile.ReadTrimmed(Path.Combine(dir, "online"));
            int package = ReadInt(Path.Combine(dir, "topology", "physical_package_id"));
            if (package < 0) continue; // no topology: an offline CPU on kernels that hide it; nothing to read there
            cpus.Add(new LogicalCpu(cpu, package, Math.Max(0, ReadInt(Path.Combine(dir, "topology", "die_id"))),
                ReadInt(Path.Combine(dir, "topology", "core_id")), online != "0"));
        }
        cpus.Sort((a, b) => a.Cpu.CompareTo(b.Cpu));
        return new CpuTopology(cpus);
    }

    private static int ReadInt(string path) =>
        int.TryParse(TextFile.ReadTrimmed(path), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : -1;

    /// <summary>
    /// One online CPU per RAPL unit: per (package, die) when <paramref name="perDie"/>, else per package.
    /// <paramref name="skipped"/> names the packages that have no online CPU at all (their energy cannot be read).
    /// </summary>
    public IReadOnlyList<RaplUnit> Leads(bool perDie, out IReadOnlyList<string> skipped)
    {
        var units = new List<RaplUnit>();
        var missing = new List<string>();
        var groups = Cpus.GroupBy(c => (c.Package, Die: perDie ? c.Die : 0)).OrderBy(g => g.Key.Package).ThenBy(g => g.Key.Die);
        foreach (var g in groups)
        {
            int diesInPackage = perDie ? Cpus.Where(c => c.Package == g.Key.Package).Select(c => c.Die).Distinct().Count() : 1;
            string id = diesInPackage > 1 ? $"{g.Key.Package}-die-{g.Key.Die}" : g.Key.Package.ToString(CultureInfo.InvariantCulture);
            var lead = g.Where(c => c.Online).OrderBy(c => c.Cpu).FirstOrDefault();
            if (lead is null) { missing.Add($"package {id} has no online CPU"); continue; }
            // One CPU per physical core of the unit (AMD's per-core energy register): the last online thread of each
            // core. Any thread of a core reads the same register; the last one keeps the lead CPU (which serves the
            // package and unit registers) out of it on SMT machines, and lets a generated MSR file hold AMD's adjacent
            // registers (0xC0010299..0xC001029B, whose 8-byte slots overlap) on different CPUs.
            var cores = g.Where(c => c.Online).GroupBy(c => c.Core).Select(cg => cg.Max(c => c.Cpu)).OrderBy(c => c).ToArray();
            units.Add(new RaplUnit(id, g.Key.Package, lead.Cpu, cores));
        }
        skipped = missing;
        return units;
    }

    /// <summary>The package of a CPU, or -1 when unknown.</summary>
    public int PackageOf(int cpu) => Cpus.FirstOrDefault(c => c.Cpu == cpu)?.Package ?? -1;

    /// <summary>Parses a kernel CPU list (<c>0-3,8,10-11</c>), as in <c>cpumask</c> and <c>online</c> files.</summary>
    public static bool TryParseList(string text, out List<int> cpus)
    {
        cpus = new List<int>();
        foreach (string part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int dash = part.IndexOf('-');
            if (dash < 0)
            {
                if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int one)) return false;
                cpus.Add(one);
                continue;
            }
            if (!int.TryParse(part.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out int lo)
                || !int.TryParse(part.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int hi) || hi < lo || hi - lo > 65536)
                return false;
            for (int c = lo; c <= hi; c++) cpus.Add(c);
        }
        return cpus.Count > 0;
    }
}

/// <summary>A RAPL unit (a package, or a die of a multi-die package): its resource id, the CPU its registers are read on, and one CPU per core.</summary>
/// <param name="Id">The resource id: <c>0</c>, or <c>0-die-1</c> on multi-die packages (as powercap's <c>package-0-die-1</c>).</param>
public sealed record RaplUnit(string Id, int Package, int LeadCpu, IReadOnlyList<int> CoreCpus);
