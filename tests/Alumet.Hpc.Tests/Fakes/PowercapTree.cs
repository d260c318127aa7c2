namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// A generated powercap class directory, flat like /sys/class/powercap: <c>intel-rapl:N</c> zones and <c>intel-rapl:N:M</c> subzones, each with name, enabled,
/// max_energy_range_uj and energy_uj that the test scripts by writing values.
/// </summary>
public sealed class PowercapTree : TempTree
{
    public PowercapTree() : base("powercap") { }

    /// <summary>Adds a zone directory such as "intel-rapl:0" or "intel-rapl:0:1".</summary>
    public PowercapTree Zone(string dir, string name, ulong maxEnergyRangeUj, ulong energyUj = 0, bool enabled = true)
    {
        Write(Path.Combine(dir, "name"), name + "\n");
        Write(Path.Combine(dir, "enabled"), enabled ? "1\n" : "0\n");
        Write(Path.Combine(dir, "max_energy_range_uj"), maxEnergyRangeUj + "\n");
        SetEnergy(dir, energyUj);
        return this;
    }

    /// <summary>
    /// Overwrites a zone's counter in place (same inode, as sysfs: open handles see the new value), zero-padded
    /// to a fixed width so that one small pwrite replaces it whole and a concurrent reader never sees a short file.
    /// </summary>
    public void SetEnergy(string dir, ulong energyUj)
    {
        string path = PathOf(dir, "energy_uj");
        using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
        fs.Write(System.Text.Encoding.ASCII.GetBytes(energyUj.ToString("D20") + "\n"));
    }

    /// <summary>The benchmark's and most tests' shape: sockets × (package, core, dram).</summary>
    public static PowercapTree Standard(int sockets, ulong maxRange = 262_143_328_850)
    {
        var t = new PowercapTree();
        for (int s = 0; s < sockets; s++)
        {
            t.Zone($"intel-rapl:{s}", $"package-{s}", maxRange);
            t.Zone($"intel-rapl:{s}:0", "core", maxRange);
            t.Zone($"intel-rapl:{s}:1", "dram", maxRange);
        }
        return t;
    }
}
