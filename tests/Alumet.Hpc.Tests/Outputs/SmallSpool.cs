using Alumet.Hpc.Spool;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// A hand-written spool with known integers: job 1234 on n1, three 1 s intervals, package+dram (µJ), a GPU (mJ),
/// cores and psys (not in the total), two steps, one wrap-ambiguous and one read-error record.
/// </summary>
public static class SmallSpool
{
    public const long Sec = 1_000_000_000;
    public static readonly SpoolSeries[] Series =
    [
        S("node", "cpu_package", "0"),                 // 0
        S("job:1234", "cpu_package", "0"),             // 1
        S("other_jobs", "cpu_package", "0"),           // 2
        S("unattributed", "cpu_package", "0"),         // 3
        S("node", "dram", "0"),                        // 4
        S("job:1234", "dram", "0"),                    // 5
        S("other_jobs", "dram", "0"),                  // 6
        S("unattributed", "dram", "0"),                // 7
        S("node", "gpu", "0000:3b:00.0", "nvml-energy-counter", 1e-3),     // 8
        S("job:1234", "gpu", "0000:3b:00.0", "nvml-energy-counter", 1e-3), // 9
        S("job:1234", "cpu_cores", "0"),               // 10
        S("step:1234.batch", "cpu_package", "0"),      // 11
        S("step:1234.0", "cpu_package", "0"),          // 12
        S("job:1234", "psys", "0"),                    // 13
    ];

    // Per interval (t = 1, 2, 3 s): raw value for each series index.
    public static readonly long[][] Values =
    [
        [100_000_000, 60_000_000, 30_000_000, 10_000_000, 20_000_000, 12_000_000, 5_000_000, 3_000_000, 250_000, 250_000, 40_000_000, 10_000_000, 50_000_000, 80_000_000],
        [110_000_000, 90_000_000, 15_000_000, 5_000_000, 21_000_000, 12_000_000, 6_000_000, 3_000_000, 250_000, 250_000, 70_000_000, 20_000_000, 70_000_000, 110_000_000],
        [70_000_000, 30_000_000, 35_000_000, 5_000_000, 19_000_000, 12_000_000, 4_000_000, 3_000_000, 100_000, 100_000, 20_000_000, 30_000_000, 0, 45_000_000],
    ];

    public static List<SpoolRecord> Records()
    {
        var list = new List<SpoolRecord>();
        for (int t = 0; t < Values.Length; t++)
            for (int s = 0; s < Series.Length; s++)
            {
                var flags = (t, s) switch
                {
                    (1, 1) => SpoolFlags.WrapAmbiguous,
                    (2, 1) => SpoolFlags.ReadError,
                    (2, 0) => SpoolFlags.ReadError,
                    _ => SpoolFlags.None,
                };
                list.Add(R(T0 + (t + 1) * Sec, Sec, Values[t][s], s, flags));
            }
        return list;
    }

    public static long RawSum(int series) => Values.Sum(v => v[series]);

    /// <summary>J of one series, converted once from the raw sum (the definition the outputs follow).</summary>
    public static double J(int series) => RawSum(series) * Series[series].JoulesPerUnit;

    public static SpoolMeta Write(string dir, string jobId = "1234", string node = "n1")
    {
        var meta = Meta(jobId, node);
        meta.Series.AddRange(Series.Select(s => new SpoolSeries
        {
            Consumer = s.Consumer.Replace("1234", jobId), ResourceKind = s.ResourceKind, ResourceId = s.ResourceId,
            Interface = s.Interface, JoulesPerUnit = s.JoulesPerUnit, Label = s.Label,
        }));
        TestSpools.Write(dir, meta, Records());
        return meta;
    }
}
