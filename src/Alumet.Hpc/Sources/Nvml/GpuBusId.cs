using System.Globalization;

namespace Alumet.Hpc.Sources.Nvml;

/// <summary>
/// PCI bus ids in one canonical form, the sysfs one: <c>0000:3b:00.0</c> (lower case, 4-digit domain when it fits).
/// NVML prints <c>00000000:3B:00.0</c>, its legacy field <c>0000:3B:00.0</c>, Slurm and <c>lspci -D</c> the sysfs form:
/// normalizing lets a GPU be matched whatever tool named it, and keeps the resource id stable across drivers.
/// </summary>
public static class GpuBusId
{
    /// <summary>Canonical form of <paramref name="text"/>, or the trimmed lower-cased text when it is not a bus id.</summary>
    public static string Normalize(string text) => TryNormalize(text, out string id) ? id : text.Trim().ToLowerInvariant();

    /// <summary>Parses <c>[domain:]bus:device.function</c> (hex fields).</summary>
    public static bool TryNormalize(string text, out string busId)
    {
        busId = "";
        string[] parts = text.Trim().Split(':');
        if (parts.Length is not (2 or 3)) return false;
        string domainText = parts.Length == 3 ? parts[0] : "0";
        string busText = parts[^2];
        string[] devFn = parts[^1].Split('.');
        if (devFn.Length != 2) return false;
        if (!Hex(domainText, 8, out uint domain) || !Hex(busText, 2, out uint bus)
            || !Hex(devFn[0], 2, out uint device) || !Hex(devFn[1], 1, out uint function))
            return false;
        if (device > 0x1f || function > 7) return false;
        string d = domain <= 0xffff ? domain.ToString("x4", CultureInfo.InvariantCulture) : domain.ToString("x8", CultureInfo.InvariantCulture);
        busId = $"{d}:{bus:x2}:{device:x2}.{function:x1}";
        return true;
    }

    private static bool Hex(string s, int maxDigits, out uint value)
    {
        value = 0;
        return s.Length >= 1 && s.Length <= maxDigits
            && uint.TryParse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }
}
