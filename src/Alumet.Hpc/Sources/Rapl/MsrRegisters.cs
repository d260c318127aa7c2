using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>
/// RAPL model-specific registers (Intel SDM vol. 4; AMD PPR for family 17h/19h). Energy counters are the low 32
/// bits, in units of 2^-ESU J where ESU is bits 12:8 of the unit register.
/// </summary>
public static class MsrRegisters
{
    public const uint IntelPowerUnit = 0x606;
    public const uint IntelPkg = 0x611;
    public const uint IntelDram = 0x619;
    public const uint IntelPp0 = 0x639;
    public const uint IntelPp1 = 0x641;
    public const uint IntelPsys = 0x64D;
    public const uint AmdPowerUnit = 0xC0010299;
    public const uint AmdCore = 0xC001029A;
    public const uint AmdPkg = 0xC001029B;

    /// <summary>The counters are 32 bits wide: they wrap at 2^32 units.</summary>
    public const ulong Modulus = 1UL << 32;

    /// <summary>Energy status unit: bits 12:8 of the unit register; joules per count = 2^-ESU (exact in a double).</summary>
    public static int EnergyStatusUnit(ulong unitRegister) => (int)((unitRegister >> 8) & 0x1F);

    public static double JoulesPerUnit(int esu) => Math.ScaleB(1.0, -esu);

    /// <summary>The Intel domains, in the order they are read.</summary>
    internal static readonly (uint Register, ResourceKind Kind, string Label)[] IntelDomains =
    [
        (IntelPkg, ResourceKind.CpuPackage, "package"),
        (IntelPp0, ResourceKind.CpuCores, "core"),
        (IntelPp1, ResourceKind.Uncore, "uncore"),
        (IntelDram, ResourceKind.Dram, "dram"),
        (IntelPsys, ResourceKind.Psys, "psys"),
    ];
}
