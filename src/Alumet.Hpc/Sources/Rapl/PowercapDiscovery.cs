using System.Text.RegularExpressions;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>
/// Finds RAPL zones under the powercap class directory:
/// <c>intel-rapl:N</c> (package-N or psys) and their subzones <c>intel-rapl:N:M</c> (core, uncore, dram),
/// plus <c>intel-rapl-mmio:N</c>. The MMIO interface reads the same package counter through another path, so an
/// MMIO zone is kept only where the MSR tree lacks that domain: counting both would double the package energy.
/// </summary>
public static partial class PowercapDiscovery
{
    [GeneratedRegex(@"^(intel-rapl|intel-rapl-mmio):(\d+)(?::(\d+))?$")]
    private static partial Regex ZoneDir();

    public sealed record Result(IReadOnlyList<RaplZone> Zones, IReadOnlyList<string> Problems);

    public static Result Discover(string powercapRoot)
    {
        var zones = new List<RaplZone>();
        var problems = new List<string>();
        if (!Directory.Exists(powercapRoot))
            return new Result(zones, new[] { $"{powercapRoot} does not exist (no powercap driver: load intel_rapl_msr, or use the estimate source)" });

        var entries = Directory.GetFileSystemEntries(powercapRoot)
            .Select(p => (Path: p, M: ZoneDir().Match(System.IO.Path.GetFileName(p))))
            .Where(e => e.M.Success)
            .OrderBy(e => e.M.Groups[1].Value == "intel-rapl-mmio" ? 1 : 0)
            .ThenBy(e => int.Parse(e.M.Groups[2].Value))
            .ThenBy(e => e.M.Groups[3].Success ? int.Parse(e.M.Groups[3].Value) : -1);

        var seen = new HashSet<ResourceId>();
        var parentIds = new Dictionary<(string, string), string>();
        foreach (var (path, m) in entries)
        {
            bool mmio = m.Groups[1].Value == "intel-rapl-mmio";
            string? name = TextFile.ReadTrimmed(System.IO.Path.Combine(path, "name"));
            if (name is null) { problems.Add($"{path}/name unreadable"); continue; }
            if (TextFile.ReadTrimmed(System.IO.Path.Combine(path, "enabled")) == "0") { problems.Add($"{path} ({name}) is disabled"); continue; }

            // Subzones belong to the package of their parent: intel-rapl:0:2 is dram of package 0, and on multi-die
            // parts intel-rapl:1:0 is the core of intel-rapl:1 = package-0-die-1 (the same ids as the msr and perf interfaces).
            string socket = m.Groups[2].Value;
            var parent = (m.Groups[1].Value, socket);
            if (!m.Groups[3].Success && name.StartsWith("package-", StringComparison.Ordinal))
                parentIds[parent] = socket = name["package-".Length..];
            else if (m.Groups[3].Success && parentIds.TryGetValue(parent, out var parentId))
                socket = parentId;
            ResourceKind? kind = name switch
            {
                _ when name.StartsWith("package", StringComparison.Ordinal) => ResourceKind.CpuPackage,
                "core" => ResourceKind.CpuCores,
                "uncore" => ResourceKind.Uncore,
                "dram" => ResourceKind.Dram,
                "psys" => ResourceKind.Psys,
                _ => null,
            };
            if (kind is null) { problems.Add($"{path}: unknown RAPL domain '{name}', ignored"); continue; }

            // One platform counter per node: psys:0, as the msr and perf interfaces name it, whatever its zone index.
            var resource = new ResourceId(kind.Value, kind == ResourceKind.Psys ? "0" : socket);
            if (!seen.Add(resource)) continue; // MMIO duplicate of an MSR zone

            string maxText = TextFile.ReadTrimmed(System.IO.Path.Combine(path, "max_energy_range_uj")) ?? "";
            if (!ulong.TryParse(maxText, out ulong max) || max == 0)
            {
                problems.Add($"{path}/max_energy_range_uj unreadable: cannot handle wraparound, zone ignored");
                continue;
            }
            string energy = System.IO.Path.Combine(path, "energy_uj");
            try
            {
                using var probe = new SysfsCounterFile(energy);
                if (!probe.TryRead(out _)) { problems.Add($"{energy} does not hold an integer"); continue; }
            }
            catch (UnauthorizedAccessException)
            {
                problems.Add($"{energy}: permission denied (powercap counters are root-only since Linux 5.10; run the sampler as root)");
                continue;
            }
            catch (IOException e)
            {
                problems.Add($"{energy}: {e.Message}");
                continue;
            }
            zones.Add(new RaplZone(path, name, resource, mmio ? MeasurementInterface.PowercapMmio : MeasurementInterface.Powercap, max));
        }
        return new Result(zones, problems);
    }
}
