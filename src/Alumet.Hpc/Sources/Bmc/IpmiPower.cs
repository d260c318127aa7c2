using System.Buffers.Binary;
using System.Text;

namespace Alumet.Hpc.Sources.Bmc;

/// <summary>DCMI Get Power Reading, mode 1 (system power statistics): the BMC's current/min/max/average watts.</summary>
/// <param name="Timestamp">The BMC's time of the reading, s since 1970: a value that stops advancing means a stale reading.</param>
/// <param name="Active">"Power measurement active" (bit 6 of the reading state); false = the BMC has no valid reading.</param>
public readonly record struct DcmiReading(ushort CurrentW, ushort MinW, ushort MaxW, ushort AverageW, uint Timestamp, uint PeriodMs, bool Active);

/// <summary>Conversion factors of a threshold sensor from its full SDR (IPMI 2.0 §36.3): y = (M·x + B·10^Bexp)·10^Rexp.</summary>
public readonly record struct SensorFactors(int M, int B, int BExp, int RExp, int Format)
{
    /// <summary>The reading in the sensor's unit from its raw byte (Format: 0 unsigned, 1 one's, 2 two's complement).</summary>
    public double Convert(byte raw)
    {
        int x = Format switch
        {
            1 => (raw & 0x80) != 0 ? -(~raw & 0x7F) : raw,
            2 => (sbyte)raw,
            _ => raw,
        };
        return (M * x + B * Math.Pow(10, BExp)) * Math.Pow(10, RExp);
    }
}

/// <summary>A power sensor found in the SDR repository: a full (type 1) threshold record whose base unit is Watts.</summary>
public sealed record PowerSensor(byte Number, byte Lun, string Name, SensorFactors Factors);

/// <summary>
/// Encodings and decodings of the IPMI/DCMI messages the BMC source uses. Byte layouts are those of the DCMI 1.5
/// specification (Get Power Reading, NetFn 0x2C group extension 0xDC command 0x02) and IPMI 2.0 (Get SDR 0x0A/0x23,
/// Get Sensor Reading 0x04/0x2D). Responses are given as <c>ipmi_cmd_raw</c> returns them: command, completion code, data.
/// </summary>
public static class IpmiPower
{
    public const byte NetFnSensor = 0x04, NetFnStorage = 0x0A, NetFnGroupExtension = 0x2C;
    public const byte DcmiGroup = 0xDC, CmdGetPowerReading = 0x02;
    public const byte CmdReserveSdr = 0x22, CmdGetSdr = 0x23, CmdGetSensorReading = 0x2D;
    private const byte UnitWatts = 6;

    /// <summary>Get Power Reading request: group 0xDC, mode 1 (system power statistics), no mode attributes.</summary>
    public static ReadOnlySpan<byte> PowerReadingRequest => [CmdGetPowerReading, DcmiGroup, 0x01, 0x00, 0x00];

    public static bool TryParsePowerReading(ReadOnlySpan<byte> rs, out DcmiReading reading, out string problem)
    {
        reading = default;
        if (!CompletedOk(rs, out problem)) return false;
        if (rs.Length < 20 || rs[2] != DcmiGroup) { problem = $"short or malformed DCMI power reading ({rs.Length} bytes)"; return false; }
        reading = new DcmiReading(
            BinaryPrimitives.ReadUInt16LittleEndian(rs[3..]), BinaryPrimitives.ReadUInt16LittleEndian(rs[5..]),
            BinaryPrimitives.ReadUInt16LittleEndian(rs[7..]), BinaryPrimitives.ReadUInt16LittleEndian(rs[9..]),
            BinaryPrimitives.ReadUInt32LittleEndian(rs[11..]), BinaryPrimitives.ReadUInt32LittleEndian(rs[15..]),
            (rs[19] & 0x40) != 0);
        return true;
    }

    /// <summary>True when the completion code (byte 1) is 0; otherwise <paramref name="problem"/> names it.</summary>
    public static bool CompletedOk(ReadOnlySpan<byte> rs, out string problem)
    {
        if (rs.Length < 2) { problem = "empty response"; return false; }
        if (rs[1] == 0) { problem = ""; return true; }
        problem = rs[1] switch
        {
            0xC1 => "completion code 0xC1 (invalid command: not supported by this BMC)",
            0xC3 => "completion code 0xC3 (timeout in the BMC)",
            0xCB => "completion code 0xCB (requested sensor or record not present)",
            0xD4 => "completion code 0xD4 (insufficient privilege)",
            0xD5 => "completion code 0xD5 (not supported in the present state)",
            _ => $"completion code 0x{rs[1]:X2}",
        };
        return false;
    }

    /// <summary>
    /// A full sensor record (from its header) that measures Watts with a linear conversion, or null. <paramref name="wanted"/>
    /// selects by id string (empty: any Watts sensor). <paramref name="refused"/> says why a sensor of the wanted name whose
    /// base unit is Watts is not used: its unit is a rate of Watts (Watts per hour), a modifier unit, or a percentage.
    /// </summary>
    public static PowerSensor? ParsePowerSensor(ReadOnlySpan<byte> record, string wanted, out string? refused)
    {
        refused = null;
        // Header 5 bytes, key 3, body: indexes below are 0-based into the whole record.
        if (record.Length < 48 || record[3] != 0x01 || record[21] != UnitWatts) return null;
        int len = record[47] & 0x1F;
        string name = Encoding.ASCII.GetString(record.Slice(48, Math.Min(len, record.Length - 48))).TrimEnd('\0', ' ');
        if (wanted.Length > 0 && !string.Equals(name, wanted, StringComparison.OrdinalIgnoreCase)) return null;
        // Sensor units 1 (IPMI 2.0 table 43-1, byte 21): bits 7:6 analog format, 5:3 rate unit, 2:1 modifier unit, 0 percentage.
        byte units1 = record[20];
        string? unit = ((units1 >> 3) & 0x07) switch
        {
            0 => null,
            1 => "Watts per µs",
            2 => "Watts per ms",
            3 => "Watts per second",
            4 => "Watts per minute",
            5 => "Watts per hour",
            6 => "Watts per day",
            _ => "Watts per a reserved rate unit",
        };
        unit ??= (units1 & 0x06) != 0 ? "Watts combined with a modifier unit" : (units1 & 0x01) != 0 ? "a percentage of Watts" : null;
        if (unit is not null)
        {
            refused = $"\"{name}\" is in {unit} (sensor units 1 = 0x{units1:X2} in its SDR), not Watts";
            return null;
        }
        if ((record[23] & 0x7F) != 0) return null; // non-linear: needs the linearization formula
        int format = units1 >> 6;
        if (format == 3) return null; // no analog reading
        int m = TenBits(record[24], record[25]);
        int b = TenBits(record[26], record[27]);
        int rexp = FourBits(record[29] >> 4), bexp = FourBits(record[29] & 0x0F);
        return new PowerSensor(record[7], (byte)(record[6] & 0x03), name, new SensorFactors(m, b, bexp, rexp, format));
    }

    /// <summary>Get Sensor Reading response → the raw byte, or a problem (reading unavailable, scanning disabled).</summary>
    public static bool TryParseSensorReading(ReadOnlySpan<byte> rs, out byte raw, out string problem)
    {
        raw = 0;
        if (!CompletedOk(rs, out problem)) return false;
        if (rs.Length < 4) { problem = $"short sensor reading ({rs.Length} bytes)"; return false; }
        if ((rs[3] & 0x20) != 0) { problem = "sensor reading unavailable"; return false; }
        if ((rs[3] & 0x40) == 0) { problem = "sensor scanning disabled"; return false; }
        raw = rs[2];
        return true;
    }

    private static int TenBits(byte ls, byte msInTop2)
    {
        int v = ls | ((msInTop2 & 0xC0) << 2);
        return (v & 0x200) != 0 ? v - 0x400 : v;
    }

    private static int FourBits(int v) => (v & 0x8) != 0 ? v - 16 : v;
}
