using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Nvml;

namespace Alumet.Hpc.Sources.Bmc;

/// <summary>
/// Whole-node wall power from the BMC (IPMI), one channel <c>node_wall:bmc</c>: a synthetic mJ counter integrating the
/// BMC's readings, interface <c>ipmi-dcmi</c> or <c>ipmi-sensor</c>. It is a separate domain, never added to
/// TotalEnergy (RAPL and NVML are inside it).
/// <para>Threads: BMCs refresh about once a second and answer in 10-100 ms, some in seconds or not at all, so every
/// IPMI request runs on this source's own reader thread at <see cref="BmcSettings.Hz"/>, bounded by the session
/// timeout. <see cref="Read"/> never touches the network: it integrates the readings that arrived since the last call,
/// so neither the RAPL tick nor the sampler's stop ever waits for a BMC.</para>
/// <para>Integration: trapezoid between consecutive good readings, each stamped with the midpoint of its request
/// (<see cref="PowerIntegrator"/>, the same rule as NVML power). A failed, timed-out or stale reading is reported as a
/// read error (the interval is flagged) and breaks the integration: the energy between the last good reading before it
/// and the first good one after it is not counted, so a faulty BMC makes the energy a lower bound, never an invention.
/// Before the first and after the last reading nothing is counted either (at most one read period at each end).</para>
/// </summary>
public sealed class BmcSource : IEnergySource
{
    private readonly FreeIpmiLibrary _lib;
    private readonly BmcReader _reader;
    private readonly BmcSettings _settings;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly Queue<(uint Milliwatts, long Ns)> _pending = new();   // good readings not yet integrated
    private long _failures;                                                 // failed/stale readings so far
    private long _failuresSeen;
    private PowerIntegrator _integrator;
    private ulong _baseMj;             // energy of integration runs closed by a failure
    private long _lastNs = -1;         // time of the last integrated reading (-1: none since the last break)
    private long _coveredNs;           // Σ of the intervals integrated so far
    private string _lastProblem = "";
    private int _disposed;

    private BmcSource(FreeIpmiLibrary lib, BmcReader reader, BmcSettings settings)
    {
        _lib = lib;
        _reader = reader;
        _settings = settings;
        var iface = reader.Interface;
        Channels = [new EnergyChannel(new ResourceId(ResourceKind.NodeWall, "bmc"), iface, 1e-3, 0,
            iface == MeasurementInterface.IpmiDcmi ? "BMC DCMI power reading" : $"BMC sensor {reader.Sensor!.Name}")];
        _thread = new Thread(Poll) { Name = "bmc-reader", IsBackground = true };
        _thread.Start();
    }

    /// <summary>Plausibility bound of the node_wall counter, W: far above any node (GPU nodes draw a few kW); the synthetic
    /// counter cannot wrap or reset, so this only guards against a corrupt reading.</summary>
    public const double MaxPlausibleW = 100_000;

    public string Name => "bmc";

    public IReadOnlyList<EnergyChannel> Channels { get; }

    public MeasurementInterface Interface => _reader.Interface;

    /// <summary>Called on the reader thread with each good reading (monotonic ns of the request's midpoint, mW); for
    /// `alumet-hpc calibrate`, which needs the readings themselves. Keep it short: the next request waits for it.</summary>
    public Action<long, uint>? OnReading { get; set; }

    /// <summary>Readings that failed (no answer, error, stale) since the start; for tests and logs.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>Monotonic time the counter covers so far, ns: Σ of the intervals between consecutive good readings
    /// integrated by <see cref="Read"/> (gaps around failed readings excluded). Energy = power × this for a constant power.</summary>
    public long CoveredNs { get { lock (_gate) return _coveredNs; } }

    /// <summary>What the channel measures, for the perimeter note.</summary>
    public string Perimeter => (_reader.Interface == MeasurementInterface.IpmiDcmi
        ? "node_wall:bmc whole node, wall side (BMC DCMI Get Power Reading: the node's input power as the BMC measures it, " +
          "PSU losses, fans, disks, NICs included)"
        : $"node_wall:bmc whole node, wall side (BMC power sensor \"{_reader.Sensor!.Name}\", 1-byte reading, step {_reader.Sensor.Factors.Convert(1) - _reader.Sensor.Factors.Convert(0):0.##} W)")
        + $", polled at {_settings.Hz:0.##} Hz, trapezoid between readings; a separate domain, not in TotalEnergy";

    /// <summary>
    /// Opens the BMC per the configuration. <c>sources.bmc = "off"</c>: null. <c>"auto"</c>: null (status says why)
    /// when there is no BMC here (no <c>/dev/ipmi0</c> and no <c>[bmc] host</c>, no libfreeipmi, or no power reading).
    /// <c>"on"</c>: those cases throw <see cref="Jobs.MissingHardwareException"/>. Choosing DCMI or sensor costs one
    /// request (at most <c>[bmc] timeout_ms</c> on a BMC that does not answer).
    /// </summary>
    public static BmcSource? TryOpen(AlumetConfig cfg, out string status)
    {
        string mode = cfg.Sources.Bmc;
        if (mode == "off") { status = "bmc: disabled by configuration (sources.bmc = off)"; return null; }
        var b = cfg.Bmc;
        if (b.Host.Length == 0 && !File.Exists(b.Device))
            return Fail(mode, $"no BMC: {b.Device} is absent (load ipmi_si/ipmi_devintf) and [bmc] host is not set", out status);

        string password = "";
        if (b.PasswordFile.Length > 0)
        {
            try { password = File.ReadAllText(b.PasswordFile).TrimEnd('\r', '\n'); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Fail(mode, $"cannot read [bmc] password_file {b.PasswordFile}: {e.Message}", out status);
            }
        }
        var settings = new BmcSettings(b.Host, b.User, password, b.Interface, b.Sensor, b.Hz, b.TimeoutMs, b.StaleAfterS,
            (byte)b.CipherSuite, b.Privilege switch { "admin" => FreeIpmiLibrary.PrivilegeAdmin, "operator" => FreeIpmiLibrary.PrivilegeOperator, _ => FreeIpmiLibrary.PrivilegeUser },
            b.Device);
        var source = Open(b.FreeipmiLibrary, settings, out string error);
        if (source is null) return Fail(mode, error, out status);
        status = $"bmc: {settings.Where}, {source.Interface.Wire()} at {settings.Hz:0.##} Hz";
        return source;
    }

    /// <summary>Loads libfreeipmi, connects and chooses the query; null with a sentence when that fails.</summary>
    public static BmcSource? Open(string library, BmcSettings settings, out string error)
    {
        var lib = FreeIpmiLibrary.TryLoad(library, out error);
        if (lib is null) return null;
        var reader = new BmcReader(lib, settings);
        if (!reader.Open(out error))
        {
            reader.Dispose();
            lib.Dispose();
            return null;
        }
        return new BmcSource(lib, reader, settings);
    }

    private static BmcSource? Fail(string mode, string why, out string status)
    {
        if (mode == "on") throw new Jobs.MissingHardwareException($"{why}; set [sources] bmc = \"auto\" to run without node wall power");
        status = $"bmc: {why}";
        return null;
    }

    private void Poll()
    {
        var ticker = new Ticker(_settings.Hz);
        do
        {
            long t0 = Clock.MonotonicNs();
            bool ok = _reader.TryRead(t0, out uint mw, out string problem);
            long t1 = Clock.MonotonicNs();
            if (ok) OnReading?.Invoke(t0 + (t1 - t0) / 2, mw);
            lock (_gate)
            {
                if (ok) _pending.Enqueue((mw, t0 + (t1 - t0) / 2));
                else
                {
                    _pending.Enqueue((0, -1)); // marker: break the integration here
                    Interlocked.Increment(ref _failures);
                }
            }
            if (!ok && problem != _lastProblem) Log.Warn($"bmc: {problem}; node wall energy not counted until the BMC answers again");
            else if (ok && _lastProblem.Length > 0) Log.Info("bmc: readings are back");
            _lastProblem = ok ? "" : problem;
        } while (ticker.WaitNext(_stop.Token, out _));
    }

    /// <summary>
    /// Integrates the readings that arrived since the last call into the mJ counter (raw[0]); ok[0] is false when a
    /// reading failed meanwhile. Never blocks on the BMC.
    /// </summary>
    public void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        bool failed;
        lock (_gate)
        {
            while (_pending.TryDequeue(out var r))
            {
                if (r.Ns < 0)
                {
                    _baseMj += _integrator.Millijoules;
                    _integrator = default; // the next good reading starts a new run: the gap is not counted
                    _lastNs = -1;
                    continue;
                }
                _integrator.Add(r.Milliwatts, r.Ns);
                if (_lastNs >= 0 && r.Ns > _lastNs) _coveredNs += r.Ns - _lastNs;
                _lastNs = r.Ns;
            }
            long f = Interlocked.Read(ref _failures);
            failed = f != _failuresSeen;
            _failuresSeen = f;
        }
        raw[0] = _baseMj + _integrator.Millijoules;
        ok[0] = !failed;
    }

    /// <summary>Stops the reader without waiting for a BMC request in flight (it ends within the session timeout).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        // A request in flight finishes within [bmc] timeout_ms; the session and library are released after it, never
        // under it. The sampler never waits for that (the thread is a background thread).
        var lib = _lib;
        var reader = _reader;
        var thread = _thread;
        ThreadPool.QueueUserWorkItem(_ =>
        {
            thread.Join();
            reader.Dispose();
            lib.Dispose();
        });
    }
}
