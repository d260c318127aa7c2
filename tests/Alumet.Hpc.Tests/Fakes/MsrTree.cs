using System.Buffers.Binary;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// A generated node for the msr interface: <c>dev/cpu/N/msr</c> files holding each register's 8 bytes at the
/// register's offset (sparse files: a register never written reads as 0, like an unimplemented counter), the CPU
/// topology (<c>sys/cpu/cpuN/topology/*</c>, <c>cpuN/online</c>) and a <c>cpuinfo</c> file naming the vendor.
/// </summary>
public sealed class MsrTree : TempTree
{
    public MsrTree() : base("msr") { }

    public string DevRoot => PathOf("dev", "cpu");
    public string CpuRoot => PathOf("sys", "cpu");
    public string Cpuinfo => PathOf("cpuinfo");

    public MsrTree Vendor(string vendorId, int family, int model)
    {
        Write("cpuinfo", $"processor\t: 0\nvendor_id\t: {vendorId}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: fake\n\n");
        return this;
    }

    /// <summary>A logical CPU: its topology, whether it is online, and its (empty) msr device file.</summary>
    public MsrTree Cpu(int cpu, int package, int core, int die = 0, bool online = true)
    {
        string dir = Path.Combine("sys", "cpu", $"cpu{cpu}");
        Write(Path.Combine(dir, "topology", "physical_package_id"), $"{package}\n");
        Write(Path.Combine(dir, "topology", "die_id"), $"{die}\n");
        Write(Path.Combine(dir, "topology", "core_id"), $"{core}\n");
        if (cpu != 0 || !online) Write(Path.Combine(dir, "online"), online ? "1\n" : "0\n");
        Directory.CreateDirectory(PathOf("dev", "cpu", cpu.ToString()));
        if (!File.Exists(Msr(cpu))) File.WriteAllBytes(Msr(cpu), []);
        return this;
    }

    public string Msr(int cpu) => PathOf("dev", "cpu", cpu.ToString(), "msr");

    /// <summary>Writes a register (little-endian, as rdmsr returns it) in place: one pwrite, the file stays sparse.</summary>
    public MsrTree Set(int cpu, uint register, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        using var h = File.OpenHandle(Msr(cpu), FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.Write(h, b, register);
        return this;
    }

    /// <summary>MSR_RAPL_POWER_UNIT / AMD's unit register with energy status unit <paramref name="esu"/> (bits 12:8) and the usual power/time units.</summary>
    public static ulong UnitRegister(int esu) => 0x000A_0003UL | ((ulong)esu << 8);

    /// <summary>
    /// An Intel node: <paramref name="packages"/> × 2 cores × 2 threads (cpu = package*4 + core*2 + thread), ESU
    /// <paramref name="esu"/>, PKG, PP0 and DRAM counters at 1 (present) on each package's CPU
    /// <paramref name="leadOf"/>(package) (default its first CPU).
    /// </summary>
    public static MsrTree Intel(int packages, int esu = 14, int model = 0x55, Func<int, int>? leadOf = null, bool dram = true)
    {
        var t = new MsrTree().Vendor("GenuineIntel", 6, model);
        for (int p = 0; p < packages; p++)
            for (int c = 0; c < 4; c++) t.Cpu(p * 4 + c, p, c / 2);
        for (int p = 0; p < packages; p++)
        {
            int lead = leadOf?.Invoke(p) ?? p * 4;
            t.Set(lead, 0x606, UnitRegister(esu)).Set(lead, 0x611, 1).Set(lead, 0x639, 1);
            if (dram) t.Set(lead, 0x619, 1);
        }
        return t;
    }

    /// <summary>
    /// An AMD Zen node: 1 package × 2 cores × 2 threads, ESU <paramref name="esu"/>, package counter and per-core
    /// counters at 1. AMD's registers are adjacent (0xC0010299..0xC001029B), so their 8-byte slots overlap in one file:
    /// the unit is written before the package counter (which leaves the unit's ESU byte intact) on cpu 0, and the core
    /// counters live on cpus 1 and 3, the threads the source reads them on.
    /// </summary>
    public static MsrTree Amd(int esu = 16)
    {
        var t = new MsrTree().Vendor("AuthenticAMD", 25, 1);
        for (int c = 0; c < 4; c++) t.Cpu(c, 0, c / 2);
        t.Set(0, 0xC0010299, UnitRegister(esu)).Set(0, 0xC001029B, 1).Set(1, 0xC001029A, 1).Set(3, 0xC001029A, 1);
        return t;
    }
}
