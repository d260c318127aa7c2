// NVML micro-benchmark. Usage:
//   dotnet run -c Release --project bench/nvml [-- lib=/path/libnvidia-ml.so.1] [gpus=N] [calls=N]
// Without lib=, compiles the fake library (gcc) with N constant-energy GPUs: the figure is then the cost of the
// binding itself (function pointer + out-parameter marshalling + a trivial C body), the floor under any driver.
// With lib=, it measures the real driver (real NVML calls take a driver lock: expect microseconds or more).
// Prints key=value lines (ns per call, ns per poll, bytes allocated per poll) for `make bench`.
using System.Diagnostics;
using System.Globalization;
using Alumet.Hpc.Sources.Nvml;

var opts = args.Select(a => a.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
int gpus = int.Parse(opts.GetValueOrDefault("gpus", "4"), CultureInfo.InvariantCulture);
long calls = long.Parse(opts.GetValueOrDefault("calls", "2000000"), CultureInfo.InvariantCulture);
string? tmp = null;
string lib;
if (opts.TryGetValue("lib", out string? given))
{
    lib = given;
    calls = Math.Min(calls, 20_000); // a real driver call is µs to ms
}
else
{
    tmp = Path.Combine(Path.GetTempPath(), $"alumet-nvml-bench-{Environment.ProcessId}");
    Directory.CreateDirectory(tmp);
    lib = Path.Combine(tmp, "libnvidia-ml.so.1");
    var psi = new ProcessStartInfo("gcc") { UseShellExecute = false };
    foreach (string a in new[] { "-shared", "-fPIC", "-O2", "-o", lib, Path.Combine(AppContext.BaseDirectory, "fake_nvml.c"), "-ldl" })
        psi.ArgumentList.Add(a);
    using (var gcc = Process.Start(psi)!) { gcc.WaitForExit(); if (gcc.ExitCode != 0) { Console.Error.WriteLine("gcc failed"); return 1; } }
    var script = new System.Text.StringBuilder();
    for (int i = 0; i < gpus; i++) script.Append(CultureInfo.InvariantCulture, $"dev {i} energy {1000 + i}\n");
    script.Append(CultureInfo.InvariantCulture, $"dev {gpus} energy unsupported\ndev {gpus} instant 250000\n"); // one integrated GPU
    File.WriteAllText(Path.Combine(tmp, "fake_nvml.script"), script.ToString());
}

try
{
    using var nvml = NvmlLibrary.TryLoad(lib, out string error);
    if (nvml is null) { Console.Error.WriteLine(error); return 1; }
    var rc = nvml.Init();
    if (rc != NvmlReturn.Success) { Console.Error.WriteLine($"nvmlInit_v2: {nvml.Describe(rc)}"); return 1; }
    nvml.GetHandleByIndex(0, out IntPtr h);

    double energyNs = Median(5, () =>
    {
        ulong sink = 0;
        long t0 = Stopwatch.GetTimestamp();
        for (long i = 0; i < calls; i++) { nvml.GetTotalEnergyConsumption(h, out ulong e); sink += e; }
        long t1 = Stopwatch.GetTimestamp();
        GC.KeepAlive(sink);
        return (t1 - t0) * 1e9 / Stopwatch.Frequency / calls;
    });
    double instantNs = Median(5, () =>
    {
        long t0 = Stopwatch.GetTimestamp();
        for (long i = 0; i < calls; i++) nvml.GetInstantPower(h, out _);
        return (Stopwatch.GetTimestamp() - t0) * 1e9 / Stopwatch.Frequency / calls;
    });
    nvml.Shutdown();

    using var source = NvmlSource.TryOpen(lib, out string status);
    if (source is null) { Console.Error.WriteLine(status); return 1; }
    int n = source.Channels.Count;
    var raw = new ulong[n];
    var ok = new bool[n];
    long polls = Math.Max(1, calls / Math.Max(1, n));
    long clock = 0;
    source.Read(raw, ok, clock);
    long allocated = 0;
    double pollNs = Median(5, () =>
    {
        long a0 = GC.GetAllocatedBytesForCurrentThread();
        long t0 = Stopwatch.GetTimestamp();
        for (long i = 0; i < polls; i++) source.Read(raw, ok, clock += 50_000_000);
        long t1 = Stopwatch.GetTimestamp();
        allocated += GC.GetAllocatedBytesForCurrentThread() - a0;
        return (t1 - t0) * 1e9 / Stopwatch.Frequency / polls;
    });

    Console.WriteLine($"nvml.library={lib}{(tmp is null ? "" : " (fake)")}");
    Console.WriteLine($"nvml.status={status}");
    Console.WriteLine(FormattableString.Invariant($"nvml.get_total_energy_ns_per_call={energyNs:F1}"));
    Console.WriteLine(FormattableString.Invariant($"nvml.field_power_instant_ns_per_call={instantNs:F1}"));
    Console.WriteLine(FormattableString.Invariant($"nvml.source_read_ns_per_poll={pollNs:F1} ({n} channels)"));
    Console.WriteLine(FormattableString.Invariant($"nvml.source_read_bytes_allocated={allocated} (over {6 * polls} polls)"));
    return 0;
}
finally
{
    if (tmp is not null) Directory.Delete(tmp, recursive: true);
}

static double Median(int runs, Func<double> run)
{
    run(); // warm-up (JIT tiering)
    var r = Enumerable.Range(0, runs).Select(_ => run()).Order().ToArray();
    return r[runs / 2];
}
