using System.Globalization;

namespace Alumet.Hpc.Sources.Rapl;

public enum CpuVendor { Unknown, Intel, Amd }

/// <summary>
/// Vendor, family and model from <c>/proc/cpuinfo</c> (no cpuid instruction, no /dev/cpu/N/cpuid: the path is
/// configurable, <c>[paths] cpuinfo</c>, so tests generate it). They decide the MSR layout: Intel's RAPL registers or AMD's.
/// </summary>
public sealed record CpuIdentity(CpuVendor Vendor, int Family, int Model, string VendorText)
{
    public static CpuIdentity Read(string cpuinfoPath)
    {
        string vendor = "", family = "", model = "";
        try
        {
            foreach (string line in File.ReadLines(cpuinfoPath))
            {
                if (line.Length == 0 && vendor.Length > 0) break; // the first processor block is enough
                int colon = line.IndexOf(':');
                if (colon < 0) continue;
                string key = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
                if (key == "vendor_id") vendor = value;
                else if (key == "cpu family") family = value;
                else if (key == "model") model = value;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return new CpuIdentity(
            vendor switch { "GenuineIntel" => CpuVendor.Intel, "AuthenticAMD" or "HygonGenuine" => CpuVendor.Amd, _ => CpuVendor.Unknown },
            int.TryParse(family, NumberStyles.Integer, CultureInfo.InvariantCulture, out int f) ? f : -1,
            int.TryParse(model, NumberStyles.Integer, CultureInfo.InvariantCulture, out int m) ? m : -1,
            vendor.Length == 0 ? "no vendor_id" : vendor);
    }

    /// <summary>
    /// Intel server parts whose DRAM domain counts in a fixed unit of 2^-16 J (15.3 µJ) whatever
    /// MSR_RAPL_POWER_UNIT says: Haswell-EP (0x3F), Broadwell-EP (0x4F), Broadwell-DE (0x56), Xeon Phi KNL/KNM
    /// (0x57, 0x85), Skylake/Cascade Lake-SP (0x55), Ice Lake-SP/-D (0x6A, 0x6C) — Intel's datasheets (e.g. Xeon E5 v3
    /// datasheet vol. 2, 330784) and Linux's RAPL drivers list these. Not Sapphire/Emerald Rapids: their DRAM counts
    /// in the ESU like the other domains (docs/implementation-notes.md, "RAPL energy unit").
    /// <c>[sources] msr_dram_unit</c> overrides the list for a part it does not know.
    /// </summary>
    public bool IntelFixedDramUnit =>
        Vendor == CpuVendor.Intel && Family == 6 && Model is 0x3F or 0x4F or 0x56 or 0x57 or 0x85 or 0x55 or 0x6A or 0x6C;

    /// <summary>Sapphire/Emerald Rapids count psys in a fixed unit of 1 J (Linux's RAPL driver).</summary>
    public bool IntelFixedPsysUnit => Vendor == CpuVendor.Intel && Family == 6 && Model is 0x8F or 0xCF;

    public override string ToString() => $"{VendorText} family {Family} model 0x{Model:X2}";
}
