using Alumet.Hpc.Config;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Nvml;

/// <summary>
/// NVIDIA GPU energy through NVML: one <see cref="EnergyChannel"/> per usable GPU, resource <c>gpu:&lt;bus id&gt;</c>.
/// <list type="bullet">
/// <item>Boards with the 64-bit energy counter (Volta and newer): raw = <c>nvmlDeviceGetTotalEnergyConsumption</c>, mJ,
/// interface <see cref="MeasurementInterface.NvmlEnergyCounter"/>. Preferred: on A100/H100 the power sensor covers only
/// ~25 % of wall time, the counter all of it (docs/implementation-notes.md, NVML).</item>
/// <item>Boards without it (<c>NVML_ERROR_NOT_SUPPORTED</c>): instant power (field 186, else the averaged
/// <c>nvmlDeviceGetPowerUsage</c>) integrated over the monotonic time given to <see cref="Read"/> into a synthetic mJ
/// counter, interface <see cref="MeasurementInterface.NvmlIntegratedPower"/>.</item>
/// </list>
/// Both are 64-bit, so <see cref="EnergyChannel.Modulus"/> is 0. Poll from one dedicated thread at
/// <c>Sampler.NvmlHz</c> (10-50 Hz: the counter refreshes every 20-100 ms and NVML serializes on a driver lock), never
/// from the 1 kHz RAPL tick. Steady-state reads allocate nothing; a log line is written only when a device changes
/// between failing and working.
/// </summary>
public sealed class NvmlSource : IEnergySource
{
    private readonly NvmlLibrary _lib;
    private readonly IntPtr[] _handles;
    private readonly GpuEnergyMethod[] _methods;
    private readonly PowerIntegrator[] _integrators;
    private readonly double[] _powerW;
    private readonly ulong[] _lastRaw;
    private readonly ulong[] _powerRefMj;   // counter value at the last change (power derived from counter steps)
    private readonly long[] _powerRefNs;
    private readonly bool[] _powerRefSet;
    private readonly NvmlReturn[] _lastError;
    private bool _disposed;

    private NvmlSource(NvmlLibrary lib, List<GpuDevice> devices, List<IntPtr> handles, List<string> skipped)
    {
        _lib = lib;
        Devices = devices;
        _handles = handles.ToArray();
        _methods = devices.Select(d => d.Method).ToArray();
        int n = devices.Count;
        _integrators = new PowerIntegrator[n];
        _powerW = new double[n];
        Array.Fill(_powerW, double.NaN);
        _lastRaw = new ulong[n];
        _powerRefMj = new ulong[n];
        _powerRefNs = new long[n];
        _powerRefSet = new bool[n];
        _lastError = new NvmlReturn[n];
        SkippedDevices = skipped;
        Channels = devices.Select(d => new EnergyChannel(d.Resource, d.Interface, 1e-3, 0, d.Name)).ToArray();
    }

    /// <summary>The source's name: its rate's key in the spool's and the Parquet file's <c>frequency_hz</c>.</summary>
    public const string SourceName = "nvml";

    public string Name => SourceName;

    /// <summary>One channel per entry of <see cref="Devices"/>, same order.</summary>
    public IReadOnlyList<EnergyChannel> Channels { get; }

    public IReadOnlyList<GpuDevice> Devices { get; }

    /// <summary>GPUs NVML listed but that cannot be measured, one line each ("GPU 1: ... GPU is lost (NVML_ERROR_GPU_IS_LOST)").</summary>
    public IReadOnlyList<string> SkippedDevices { get; }

    /// <summary>
    /// Last board power per channel, W, for the timeline (NaN until known). Integrated channels: the last power sample.
    /// Counter channels: derived from the last two distinct counter values (no extra NVML call), so it follows the
    /// counter's 20-100 ms refresh.
    /// </summary>
    public ReadOnlySpan<double> PowerW => _powerW;

    /// <summary>What the channels measure, for the spool's perimeter note and reports.</summary>
    public string Perimeter
    {
        get
        {
            var parts = Devices.Select(d =>
                $"gpu:{d.BusId} ({d.Name}) whole board as reported by NVML (GPU, its memory and on-board power circuitry; " +
                "not host PCIe slot, fans outside the board, PSU losses), " +
                (d.Method switch
                {
                    GpuEnergyMethod.EnergyCounter => "NVML energy counter (mJ)",
                    GpuEnergyMethod.IntegratedInstantPower => "integrated power: NVML instant power (field 186) integrated over time (trapezoid), mJ",
                    _ => "integrated power: NVML averaged power (nvmlDeviceGetPowerUsage, 1 s average on Ampere and newer) integrated over time, mJ",
                }) +
                (d.MigEnabled ? "; MIG enabled: whole board, charged through the parent GPU" : ""));
            return string.Join("; ", parts);
        }
    }

    /// <summary>
    /// Opens NVML according to the configuration (<c>Sources.Nvml</c> "off" disables it; <c>Paths.NvmlLibrary</c>).
    /// Returns null when there is no usable NVIDIA GPU, with <paramref name="status"/> saying why.
    /// </summary>
    public static NvmlSource? TryOpen(AlumetConfig config, out string status)
    {
        if (string.Equals(config.Sources.Nvml, "off", StringComparison.OrdinalIgnoreCase))
        {
            status = "nvml: disabled by configuration (sources.nvml = off)";
            return null;
        }
        return TryOpen(config.Paths.NvmlLibrary, out status);
    }

    /// <summary>
    /// Loads the library, initializes NVML and enumerates the GPUs. Returns null when there is no usable NVIDIA GPU;
    /// <paramref name="status"/> then starts with "no NVIDIA GPU". The normal CPU-only cases (library missing,
    /// <c>NVML_ERROR_DRIVER_NOT_LOADED</c>, zero devices) are quiet: nothing is logged. Anything else (no permission,
    /// driver/library mismatch, every GPU failing) is logged as a warning. A GPU that fails during enumeration is
    /// skipped with a warning while the others are used.
    /// </summary>
    public static NvmlSource? TryOpen(string libraryPath, out string status)
    {
        NvmlLibrary? lib = NvmlLibrary.TryLoad(libraryPath, out string loadError);
        if (lib is null)
        {
            status = $"no NVIDIA GPU: {loadError}";
            return null;
        }

        NvmlReturn rc = lib.Init();
        if (rc != NvmlReturn.Success)
        {
            status = $"no NVIDIA GPU: nvmlInit_v2 failed: {lib.Describe(rc)}";
            if (!rc.MeansNoGpu()) Log.Warn(status);
            lib.Dispose();
            return null;
        }

        rc = lib.GetCount(out uint count);
        if (rc != NvmlReturn.Success || count == 0)
        {
            status = rc == NvmlReturn.Success
                ? "no NVIDIA GPU: NVML reports 0 devices"
                : $"no NVIDIA GPU: nvmlDeviceGetCount_v2 failed: {lib.Describe(rc)}";
            if (rc != NvmlReturn.Success) Log.Warn(status);
            lib.Shutdown();
            lib.Dispose();
            return null;
        }

        var devices = new List<GpuDevice>();
        var handles = new List<IntPtr>();
        var skipped = new List<string>();
        for (uint i = 0; i < count; i++)
        {
            if (TryDescribe(lib, i, out GpuDevice? device, out IntPtr handle, out string problem))
            {
                devices.Add(device!);
                handles.Add(handle);
                if (device!.MigEnabled)
                    Log.Info($"nvml: GPU {i} ({device.BusId}) has MIG enabled: NVML measures the whole board only, " +
                             "so its energy is charged to the job(s) holding the parent GPU");
            }
            else
            {
                string line = $"GPU {i}: {problem}";
                skipped.Add(line);
                Log.Warn($"nvml: skipping {line}");
            }
        }

        if (devices.Count == 0)
        {
            status = $"no NVIDIA GPU usable: {string.Join("; ", skipped)}";
            Log.Warn(status);
            lib.Shutdown();
            lib.Dispose();
            return null;
        }

        var source = new NvmlSource(lib, devices, handles, skipped);
        status = $"nvml: {devices.Count} GPU(s): " + string.Join(", ", devices.Select(d =>
            $"{d.Index} {d.BusId} {d.Name} ({(d.Method == GpuEnergyMethod.EnergyCounter ? "energy counter" : "integrated power")})"))
            + (skipped.Count > 0 ? $"; skipped {skipped.Count}" : "");
        return source;
    }

    private static bool TryDescribe(NvmlLibrary lib, uint index, out GpuDevice? device, out IntPtr handle, out string problem)
    {
        device = null;
        problem = "";
        NvmlReturn rc = lib.GetHandleByIndex(index, out handle);
        if (rc != NvmlReturn.Success) { problem = $"nvmlDeviceGetHandleByIndex_v2: {lib.Describe(rc)}"; return false; }
        rc = lib.GetUuid(handle, out string uuid);
        if (rc != NvmlReturn.Success) { problem = $"nvmlDeviceGetUUID: {lib.Describe(rc)}"; return false; }
        rc = lib.GetBusId(handle, out string busId);
        if (rc != NvmlReturn.Success) { problem = $"nvmlDeviceGetPciInfo_v3: {lib.Describe(rc)}"; return false; }
        rc = lib.GetName(handle, out string name);
        if (rc != NvmlReturn.Success) { problem = $"nvmlDeviceGetName: {lib.Describe(rc)}"; return false; }
        int minor = lib.GetMinorNumber(handle, out uint m) == NvmlReturn.Success ? (int)m : -1;
        bool mig = lib.GetMigMode(handle, out uint current, out _) == NvmlReturn.Success && current == 1;

        GpuEnergyMethod method;
        rc = lib.GetTotalEnergyConsumption(handle, out _);
        if (rc == NvmlReturn.Success)
        {
            method = GpuEnergyMethod.EnergyCounter;
        }
        else if (rc is NvmlReturn.NotSupported or NvmlReturn.FunctionNotFound)
        {
            NvmlReturn instant = lib.GetInstantPower(handle, out _);
            NvmlReturn average = instant == NvmlReturn.Success ? NvmlReturn.Success : lib.GetPowerUsage(handle, out _);
            if (instant == NvmlReturn.Success) method = GpuEnergyMethod.IntegratedInstantPower;
            else if (average == NvmlReturn.Success) method = GpuEnergyMethod.IntegratedAveragePower;
            else
            {
                problem = $"no energy counter ({lib.Describe(rc)}) and no power reading ({lib.Describe(average)})";
                return false;
            }
        }
        else
        {
            problem = $"nvmlDeviceGetTotalEnergyConsumption: {lib.Describe(rc)}";
            return false;
        }

        device = new GpuDevice((int)index, uuid, busId, name, minor, mig, method);
        return true;
    }

    /// <summary>
    /// Reads every channel: <paramref name="raw"/>[i] = mJ (counter or synthetic), <paramref name="ok"/>[i] = false
    /// when GPU i could not be read (then raw[i] repeats its last good value). <paramref name="monotonicNs"/> is the
    /// time of this poll (<see cref="Clock.MonotonicNs"/>); integrated channels use it as the sample time.
    /// </summary>
    public void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        int n = _handles.Length;
        if (raw.Length < n || ok.Length < n) throw new ArgumentException("raw and ok need one slot per channel");
        if (_disposed)
        {
            ok[..n].Clear();
            return;
        }

        for (int i = 0; i < n; i++)
        {
            NvmlReturn rc;
            if (_methods[i] == GpuEnergyMethod.EnergyCounter)
            {
                rc = _lib.GetTotalEnergyConsumption(_handles[i], out ulong mj);
                if (rc == NvmlReturn.Success)
                {
                    _lastRaw[i] = mj;
                    DerivePower(i, mj, monotonicNs);
                }
            }
            else
            {
                uint mw;
                rc = _methods[i] == GpuEnergyMethod.IntegratedInstantPower
                    ? _lib.GetInstantPower(_handles[i], out mw)
                    : _lib.GetPowerUsage(_handles[i], out mw);
                if (rc == NvmlReturn.Success)
                {
                    _integrators[i].Add(mw, monotonicNs);
                    _lastRaw[i] = _integrators[i].Millijoules;
                    _powerW[i] = mw / 1000.0;
                }
            }

            raw[i] = _lastRaw[i];
            ok[i] = rc == NvmlReturn.Success;
            if (rc != _lastError[i]) ReportTransition(i, rc);
        }
    }

    private void DerivePower(int i, ulong mj, long nowNs)
    {
        if (!_powerRefSet[i] || mj < _powerRefMj[i])
        {
            _powerRefSet[i] = true; // first value, or a counter reset (driver reload): restart from here
            _powerRefMj[i] = mj;
            _powerRefNs[i] = nowNs;
            return;
        }
        if (mj == _powerRefMj[i] || nowNs <= _powerRefNs[i]) return; // counter not refreshed yet
        // mJ per ns = 1e6 W.
        _powerW[i] = (mj - _powerRefMj[i]) * 1e6 / (nowNs - _powerRefNs[i]);
        _powerRefMj[i] = mj;
        _powerRefNs[i] = nowNs;
    }

    private void ReportTransition(int i, NvmlReturn rc)
    {
        GpuDevice d = Devices[i];
        if (rc == NvmlReturn.Success)
            Log.Info($"nvml: GPU {d.Index} ({d.BusId}) readable again");
        else
            Log.Warn($"nvml: GPU {d.Index} ({d.BusId}) read failed: {_lib.Describe(rc)}; other GPUs continue");
        _lastError[i] = rc;
    }

    /// <summary>Shuts NVML down and unloads the library; later reads report every channel as failed.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _lib.Shutdown();
        _lib.Dispose();
    }
}
