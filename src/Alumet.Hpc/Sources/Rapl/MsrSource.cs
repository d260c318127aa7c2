using System.Globalization;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>One RAPL counter read through <c>/dev/cpu/N/msr</c>: a register on one CPU, or (AMD cores) the same register on one CPU per core, summed.</summary>
public sealed record MsrDomain(ResourceId Resource, string Label, uint Register, IReadOnlyList<int> Cpus, double JoulesPerUnit);

/// <summary>
/// RAPL through the <c>msr</c> driver: each counter is an 8-byte pread at the register's offset of
/// <c>/dev/cpu/N/msr</c>, N an online CPU of the package (read where the counter lives). The counters are 32 bits:
/// the sampler's wrap-safe accumulator handles the wrap (modulus 2^32, every ~130-330 s at 200-500 W).
/// AMD's core energy is one register per core; the channel carries their sum modulo 2^32, which wraps like one
/// 32-bit counter whose step is the sum of the cores' steps, so the same accumulator recovers it exactly.
/// <see cref="Read"/> keeps no state besides the descriptors: it may run on two threads (the start-up cross-check).
/// </summary>
public sealed class MsrSource : IEnergySource
{
    private const uint Low32 = 0xFFFF_FFFF;
    private readonly int[] _fds;            // one per CPU read
    private readonly int[] _cpuOfFd;
    private readonly long[] _register;      // per channel
    private readonly int[] _first, _count;  // per channel: its fds are _channelFds[_first.._first+_count]
    private readonly int[] _channelFds;

    public string Name => "rapl";
    public IReadOnlyList<EnergyChannel> Channels { get; }
    public IReadOnlyList<MsrDomain> Domains { get; }

    private MsrSource(IReadOnlyList<MsrDomain> domains, Dictionary<int, int> fdByCpu)
    {
        Domains = domains;
        _fds = fdByCpu.Values.ToArray();
        _cpuOfFd = fdByCpu.Keys.ToArray();
        var index = fdByCpu.Keys.Select((cpu, i) => (cpu, i)).ToDictionary(p => p.cpu, p => p.i);
        _register = domains.Select(d => (long)d.Register).ToArray();
        _first = new int[domains.Count];
        _count = new int[domains.Count];
        var flat = new List<int>();
        for (int i = 0; i < domains.Count; i++)
        {
            _first[i] = flat.Count;
            _count[i] = domains[i].Cpus.Count;
            flat.AddRange(domains[i].Cpus.Select(c => _fds[index[c]]));
        }
        _channelFds = flat.ToArray();
        Channels = domains.Select(d => new EnergyChannel(d.Resource, MeasurementInterface.Msr, d.JoulesPerUnit, MsrRegisters.Modulus, d.Label)).ToArray();
    }

    public void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        for (int i = 0; i < _register.Length; i++)
        {
            ulong sum = 0;
            bool good = true;
            int end = _first[i] + _count[i];
            for (int k = _first[i]; k < end; k++)
            {
                if (!RaplNative.ReadU64(_channelFds[k], _register[i], out ulong v)) { good = false; break; }
                sum += v & Low32;
            }
            raw[i] = sum & Low32;
            ok[i] = good;
        }
    }

    public void Dispose()
    {
        foreach (int fd in _fds) RaplNative.close(fd);
    }

    public sealed record Result(MsrSource? Source, IReadOnlyList<string> Problems);

    /// <summary>
    /// Finds the RAPL registers readable on this node. A register that cannot be read, or reads 0 (never counted),
    /// is an absent domain (Linux's perf RAPL driver uses the same rule); servers have no PP1 or psys, AMD no DRAM.
    /// </summary>
    /// <param name="dramUnit">"auto" (the fixed 2^-16 J DRAM unit on the Intel server models that use it), "fixed" or "esu".</param>
    public static Result Discover(string msrRoot, CpuTopology topology, CpuIdentity cpu, string dramUnit = "auto")
    {
        var problems = new List<string>();
        if (cpu.Vendor == CpuVendor.Unknown)
            return new Result(null, [$"msr: unknown CPU vendor ({cpu.VendorText} in cpuinfo): RAPL registers are known for GenuineIntel and AuthenticAMD only"]);
        if (!Directory.Exists(msrRoot))
            return new Result(null, [$"msr: {msrRoot} does not exist (load the msr module: modprobe msr)"]);
        bool intel = cpu.Vendor == CpuVendor.Intel;
        // Intel's counters are per die on multi-die packages; AMD's package counter is per socket.
        var units = topology.Leads(perDie: intel, out var skipped);
        problems.AddRange(skipped.Select(s => $"msr: {s}: its energy cannot be read"));
        if (units.Count == 0)
            return new Result(null, [.. problems, "msr: no CPU topology (cpu*/topology/physical_package_id) found"]);

        var fds = new Dictionary<int, int>();
        var domains = new List<MsrDomain>();
        try
        {
            foreach (var unit in units)
            {
                int lead = Open(msrRoot, unit.LeadCpu, fds, problems);
                if (lead < 0) continue;
                uint unitRegister = intel ? MsrRegisters.IntelPowerUnit : MsrRegisters.AmdPowerUnit;
                if (!RaplNative.ReadU64(lead, unitRegister, out ulong units64))
                {
                    problems.Add($"msr: {Where(msrRoot, unit.LeadCpu, unitRegister)}: unreadable: this CPU has no RAPL (or the hypervisor hides it)");
                    continue;
                }
                int esu = MsrRegisters.EnergyStatusUnit(units64);
                double jpu = MsrRegisters.JoulesPerUnit(esu);
                if (intel)
                {
                    bool fixedDram = dramUnit == "fixed" || (dramUnit == "auto" && cpu.IntelFixedDramUnit);
                    foreach (var (reg, kind, label) in MsrRegisters.IntelDomains)
                    {
                        if (kind == ResourceKind.Psys && unit != units[0]) continue; // one platform counter per node
                        double unitJ = kind switch
                        {
                            ResourceKind.Dram when fixedDram => MsrRegisters.JoulesPerUnit(16),
                            ResourceKind.Psys when cpu.IntelFixedPsysUnit => 1.0,
                            _ => jpu,
                        };
                        string id = kind == ResourceKind.Psys ? "0" : unit.Id;
                        Probe(msrRoot, lead, unit.LeadCpu, reg, new ResourceId(kind, id), Label(kind, label, unit.Id), [unit.LeadCpu], unitJ, domains, problems);
                    }
                }
                else
                {
                    Probe(msrRoot, lead, unit.LeadCpu, MsrRegisters.AmdPkg, new ResourceId(ResourceKind.CpuPackage, unit.Id),
                        Label(ResourceKind.CpuPackage, "package", unit.Id), [unit.LeadCpu], jpu, domains, problems);
                    // Core energy: one register per physical core, all opened; a core that cannot be read voids the sum.
                    var cores = new List<int>();
                    foreach (int c in unit.CoreCpus)
                        if (Open(msrRoot, c, fds, problems) >= 0) cores.Add(c);
                    if (cores.Count == unit.CoreCpus.Count && cores.Count > 0)
                    {
                        ulong sum = 0;
                        bool readable = true;
                        foreach (int c in cores)
                        {
                            if (!RaplNative.ReadU64(fds[c], MsrRegisters.AmdCore, out ulong v)) { readable = false; break; }
                            sum += v & Low32;
                        }
                        if (readable && sum != 0)
                            domains.Add(new MsrDomain(new ResourceId(ResourceKind.CpuCores, unit.Id), $"core (sum of {cores.Count} cores)", MsrRegisters.AmdCore, cores, jpu));
                        else
                            problems.Add($"msr: core energy 0x{MsrRegisters.AmdCore:X} of package {unit.Id} {(readable ? "reads 0" : "is unreadable")}: cpu_cores:{unit.Id} not measured");
                    }
                }
            }
        }
        catch
        {
            foreach (int fd in fds.Values) RaplNative.close(fd);
            throw;
        }
        if (domains.Count == 0)
        {
            foreach (int fd in fds.Values) RaplNative.close(fd);
            return new Result(null, problems.Count > 0 ? problems : [$"msr: no RAPL counter readable under {msrRoot}"]);
        }
        // Descriptors of CPUs no domain reads (a unit whose every register was absent) are closed now.
        var used = domains.SelectMany(d => d.Cpus).ToHashSet();
        foreach (var (c, fd) in fds.Where(p => !used.Contains(p.Key)).ToArray()) { RaplNative.close(fd); fds.Remove(c); }
        return new Result(new MsrSource(domains, fds), problems);
    }

    private static string Label(ResourceKind kind, string name, string unitId) =>
        kind == ResourceKind.CpuPackage ? $"package-{unitId}" : name;

    private static string Where(string root, int cpu, uint register) =>
        $"{Path.Combine(root, cpu.ToString(CultureInfo.InvariantCulture), "msr")} register 0x{register:X}";

    private static void Probe(string root, int fd, int cpu, uint register, ResourceId resource, string label, int[] cpus, double jpu,
                              List<MsrDomain> domains, List<string> problems)
    {
        if (!RaplNative.ReadU64(fd, register, out ulong v))
            problems.Add($"msr: {Where(root, cpu, register)} unreadable: {resource} not measured (absent on this CPU)");
        else if ((v & Low32) == 0)
            problems.Add($"msr: {Where(root, cpu, register)} reads 0: {resource} not measured (a counter that never counted is absent)");
        else
            domains.Add(new MsrDomain(resource, $"{label} (msr 0x{register:X} on cpu {cpu})", register, cpus, jpu));
    }

    /// <summary>Opens (once) the MSR device of a CPU; -1 with the reason in <paramref name="problems"/>.</summary>
    private static int Open(string root, int cpu, Dictionary<int, int> fds, List<string> problems)
    {
        if (fds.TryGetValue(cpu, out int fd)) return fd;
        string path = Path.Combine(root, cpu.ToString(CultureInfo.InvariantCulture), "msr");
        fd = RaplNative.open(path, RaplNative.O_RDONLY | RaplNative.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            problems.Add(errno switch
            {
                RaplNative.ENOENT => $"msr: {path} does not exist (load the msr module: modprobe msr)",
                RaplNative.EACCES or RaplNative.EPERM => $"msr: {path}: permission denied (MSRs need root with CAP_SYS_RAWIO: run the sampler as root)",
                _ => $"msr: {path}: {RaplNative.Describe(errno)}",
            });
            return -1;
        }
        fds[cpu] = fd;
        return fd;
    }
}
