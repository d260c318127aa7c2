using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Bmc;

/// <summary>Where and how to reach the BMC ([bmc] in the configuration).</summary>
/// <param name="Host">"" = in-band through <paramref name="Device"/>; else the BMC's LAN address ("10.0.0.5", "127.0.0.1:623").</param>
/// <param name="Interface">"auto" (DCMI when the BMC answers it, else a Watts sensor), "dcmi" or "sensor".</param>
/// <param name="Sensor">Id string of the power sensor; "" = the first full sensor record whose unit is Watts.</param>
public sealed record BmcSettings(
    string Host, string User, string Password, string Interface, string Sensor, double Hz, int TimeoutMs,
    double StaleAfterS, byte CipherSuite, byte Privilege, string Device)
{
    public bool Lan => Host.Length > 0;
    public string Where => Lan ? $"BMC at {Host} (IPMI 2.0 LAN)" : $"local BMC through {Device}";
}

/// <summary>
/// One BMC connection and the power query chosen at <see cref="Open"/>: DCMI Get Power Reading where the BMC
/// supports it (the whole node's input power, the BMC's own figure), else a Watts sensor from the SDR repository (as
/// Slurm's acct_gather_energy/ipmi reads it). Every call is bounded by the session timeout; a failed call closes the
/// session and the next <see cref="TryRead"/> reopens it. Used from one thread only (<see cref="BmcSource"/>'s reader).
/// </summary>
public sealed class BmcReader : IDisposable
{
    private readonly FreeIpmiLibrary _lib;
    private readonly BmcSettings _s;
    private IntPtr _ctx;
    private PowerSensor? _sensor;
    private uint _lastTimestamp;
    private long _timestampSinceNs;
    private bool _haveTimestamp;
    private readonly byte[] _rs = new byte[64];

    public BmcReader(FreeIpmiLibrary lib, BmcSettings settings)
    {
        _lib = lib;
        _s = settings;
    }

    /// <summary><see cref="MeasurementInterface.IpmiDcmi"/> or <see cref="MeasurementInterface.IpmiSensor"/> once opened.</summary>
    public MeasurementInterface Interface { get; private set; }

    /// <summary>The sensor used on the sensor path (null on DCMI).</summary>
    public PowerSensor? Sensor => _sensor;

    /// <summary>Connects and chooses DCMI or a sensor; false with a sentence when the BMC cannot give node power.</summary>
    public bool Open(out string error)
    {
        if (!Connect(out error)) return false;
        string dcmiProblem = "not tried ([bmc] interface = \"sensor\")";
        if (_s.Interface is "auto" or "dcmi")
        {
            if (TryDcmi(out _, out dcmiProblem)) { Interface = MeasurementInterface.IpmiDcmi; error = ""; return true; }
            if (_s.Interface == "dcmi")
            {
                error = $"{_s.Where}: DCMI Get Power Reading failed: {dcmiProblem}; set [bmc] interface = \"sensor\" to read a Watts sensor instead";
                return false;
            }
            if (_ctx == IntPtr.Zero) { error = dcmiProblem; return false; } // no answer at all: a sensor would not answer either
        }
        _sensor = FindSensor(out string sensorProblem);
        if (_sensor is null)
        {
            error = $"{_s.Where}: no node power: DCMI {dcmiProblem}; sensor: {sensorProblem}";
            return false;
        }
        Interface = MeasurementInterface.IpmiSensor;
        error = "";
        return true;
    }

    /// <summary>
    /// One reading, W × 1000. False with <paramref name="problem"/> when the BMC did not answer in time, answered an
    /// error, has no valid reading, or (DCMI) its reading's timestamp has not advanced for <see cref="BmcSettings.StaleAfterS"/>.
    /// </summary>
    public bool TryRead(long monotonicNs, out uint milliwatts, out string problem)
    {
        milliwatts = 0;
        if (_ctx == IntPtr.Zero && !Connect(out problem)) return false;
        if (Interface == MeasurementInterface.IpmiDcmi)
        {
            if (!TryDcmi(out var r, out problem)) return false;
            if (!r.Active) { problem = "DCMI reports power measurement not active"; return false; }
            if (!_haveTimestamp || r.Timestamp != _lastTimestamp)
            {
                _haveTimestamp = true;
                _lastTimestamp = r.Timestamp;
                _timestampSinceNs = monotonicNs;
            }
            else if (monotonicNs - _timestampSinceNs > (long)(_s.StaleAfterS * 1e9))
            {
                problem = $"stale DCMI reading: BMC timestamp {r.Timestamp} unchanged for {(monotonicNs - _timestampSinceNs) / 1e9:0.#} s";
                return false;
            }
            milliwatts = r.CurrentW * 1000u;
            return true;
        }

        var sensor = _sensor!;
        int n = Request(IpmiPower.NetFnSensor, [IpmiPower.CmdGetSensorReading, sensor.Number], out problem);
        if (n < 0) return false;
        if (!IpmiPower.TryParseSensorReading(_rs.AsSpan(0, n), out byte raw, out problem)) return false;
        double w = sensor.Factors.Convert(raw);
        if (!(w >= 0 && w < 1e6)) { problem = $"implausible sensor reading {w} W"; return false; }
        milliwatts = (uint)Math.Round(w * 1000);
        return true;
    }

    private bool TryDcmi(out DcmiReading reading, out string problem)
    {
        reading = default;
        int n = Request(IpmiPower.NetFnGroupExtension, IpmiPower.PowerReadingRequest, out problem);
        return n >= 0 && IpmiPower.TryParsePowerReading(_rs.AsSpan(0, n), out reading, out problem);
    }

    /// <summary>Walks the SDR repository (Reserve SDR, Get SDR by 16-byte pieces) for a Watts sensor.</summary>
    private PowerSensor? FindSensor(out string problem)
    {
        int n = Request(IpmiPower.NetFnStorage, [IpmiPower.CmdReserveSdr], out problem);
        if (n < 0) return null;
        if (!IpmiPower.CompletedOk(_rs.AsSpan(0, n), out problem) || n < 4) { problem = $"Reserve SDR Repository: {problem}"; return null; }
        byte resLs = _rs[2], resMs = _rs[3];
        ushort id = 0;
        string? firstRefused = null; // a Watts sensor refused for its unit (Watts per hour): said when no other is found
        Span<byte> record = stackalloc byte[256];
        for (int guard = 0; guard < 1024 && id != 0xFFFF; guard++)
        {
            // Header first (5 bytes: id, version, type, length), then the body in pieces small enough for any BMC.
            n = Request(IpmiPower.NetFnStorage, [IpmiPower.CmdGetSdr, resLs, resMs, (byte)id, (byte)(id >> 8), 0, 5], out problem);
            if (n < 0) return null;
            if (!IpmiPower.CompletedOk(_rs.AsSpan(0, n), out problem) || n < 9) { problem = $"Get SDR {id}: {problem}"; return null; }
            ushort next = (ushort)(_rs[2] | (_rs[3] << 8));
            _rs.AsSpan(4, 5).CopyTo(record);
            int total = 5 + _rs[8];
            for (int off = 5; off < total;)
            {
                byte want = (byte)Math.Min(16, total - off);
                n = Request(IpmiPower.NetFnStorage, [IpmiPower.CmdGetSdr, resLs, resMs, (byte)id, (byte)(id >> 8), (byte)off, want], out problem);
                if (n < 0) return null;
                if (!IpmiPower.CompletedOk(_rs.AsSpan(0, n), out problem) || n < 4) { problem = $"Get SDR {id} at {off}: {problem}"; return null; }
                int got = Math.Min(n - 4, total - off);
                if (got <= 0) { problem = $"Get SDR {id}: empty piece at {off}"; return null; }
                _rs.AsSpan(4, got).CopyTo(record[off..]);
                off += got;
            }
            if (IpmiPower.ParsePowerSensor(record[..total], _s.Sensor, out string? refused) is { } found) return found;
            firstRefused ??= refused;
            id = next;
        }
        problem = _s.Sensor.Length > 0 ? $"no sensor named \"{_s.Sensor}\" with unit Watts in the SDR repository" : "no sensor with unit Watts in the SDR repository";
        if (firstRefused is not null)
            problem = _s.Sensor.Length > 0 ? $"{firstRefused}: not used; name a sensor in Watts in [bmc] sensor"
                : $"{firstRefused}: not used, and no other sensor has unit Watts in the SDR repository";
        return null;
    }

    private int Request(byte netFn, ReadOnlySpan<byte> rq, out string problem)
    {
        int n = _lib.Raw(_ctx, netFn, rq, _rs, out string? error);
        if (n < 0)
        {
            problem = $"no answer from the {_s.Where}: {error}";
            Disconnect();
            return -1;
        }
        problem = "";
        return n;
    }

    private bool Connect(out string error)
    {
        uint timeout = (uint)_s.TimeoutMs;
        _ctx = _s.Lan
            ? _lib.OpenLan(_s.Host, _s.User, _s.Password, _s.Privilege, _s.CipherSuite, timeout, Math.Max(50u, timeout / 4),
                           FreeIpmiLibrary.WorkaroundOpenSessionPrivilege, out error)
            : _lib.OpenInband(_s.Device, out error);
        if (_ctx == IntPtr.Zero)
        {
            error = $"cannot open the {_s.Where}: {error}";
            return false;
        }
        return true;
    }

    private void Disconnect()
    {
        _lib.Close(_ctx);
        _ctx = IntPtr.Zero;
    }

    public void Dispose() => Disconnect();
}
