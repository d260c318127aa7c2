using System.Globalization;

namespace Alumet.Hpc.Outputs.Carbon;

/// <summary>A CSV time series that cannot be used; the message is one sentence naming the file, the line and the fix.</summary>
public sealed class TimeSeriesFormatException(string message) : Exception(message);

/// <summary>
/// A piecewise-constant time series (PUE, carbon intensity): each value holds from its time until the next one;
/// the last holds for as long as the step before it (one hour for hourly data). A constant holds forever.
/// Outside its coverage a series has no value (NaN): nothing is extrapolated. Format: docs/carbon.md.
/// </summary>
public sealed class StepSeries
{
    private readonly long[] _startNs;
    private readonly double[] _values;
    private readonly long _endNs;

    /// <summary>Where the values come from, for reports: <c>constant 56</c> or <c>file /etc/...csv</c>.</summary>
    public string Source { get; }

    private StepSeries(long[] startNs, double[] values, long endNs, string source)
    {
        _startNs = startNs;
        _values = values;
        _endNs = endNs;
        Source = source;
    }

    public static StepSeries Constant(double value) =>
        new([long.MinValue], [value], long.MaxValue, $"constant {value.ToString("R", CultureInfo.InvariantCulture)}");

    public bool IsConstant => _startNs.Length == 1 && _startNs[0] == long.MinValue;

    /// <summary>Value in force at <paramref name="unixNs"/>, NaN outside the series.</summary>
    public double ValueAt(long unixNs)
    {
        if (unixNs < _startNs[0] || unixNs >= _endNs) return double.NaN;
        int i = Array.BinarySearch(_startNs, unixNs);
        if (i < 0) i = ~i - 1;
        return _values[i];
    }

    /// <summary>The first time after <paramref name="unixNs"/> where the value changes (or the series ends).</summary>
    public long NextChange(long unixNs)
    {
        if (unixNs < _startNs[0]) return _startNs[0];
        int i = Array.BinarySearch(_startNs, unixNs);
        i = i < 0 ? ~i : i + 1;
        return i < _startNs.Length ? _startNs[i] : _endNs;
    }

    /// <summary>First time covered and end of coverage, Unix ns.</summary>
    public (long Start, long End) Coverage => (_startNs[0], _endNs);

    /// <summary>
    /// Reads <c>time,value</c> rows (docs/carbon.md): a header line first; '#' lines and blank lines skipped; ',' or ';'
    /// separated; times in ISO 8601 (a time without offset is UTC); strictly increasing.
    /// </summary>
    /// <param name="column">Header of the value column; "" = the second column.</param>
    /// <param name="min">Smallest valid value (1 for a PUE, 0 for an intensity).</param>
    /// <param name="max">Largest plausible value.</param>
    /// <param name="what">What the values are, for messages ("PUE", "carbon intensity (gCO2e/kWh)").</param>
    /// <exception cref="TimeSeriesFormatException">Missing file, no header or rows, a bad time or value, times out of order.</exception>
    public static StepSeries Load(string path, string column, double min, double max, string what)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TimeSeriesFormatException($"{path}: cannot read the {what} file ({e.Message}); check [facility]/[carbon] in the configuration");
        }

        int valueIndex = -1;
        char sep = ',';
        var starts = new List<long>();
        var values = new List<double>();
        for (int ln = 0; ln < lines.Length; ln++)
        {
            string line = lines[ln].Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            string where = $"{path}:{ln + 1}";
            if (valueIndex < 0)
            {
                sep = line.Contains(',') ? ',' : ';';
                var header = Split(line, sep);
                if (column.Length == 0)
                {
                    if (header.Length < 2) throw new TimeSeriesFormatException($"{where}: the header has one column; a {what} file needs a time column and a value column (docs/carbon.md)");
                    valueIndex = 1;
                }
                else
                {
                    valueIndex = Array.FindIndex(header, h => string.Equals(h, column, StringComparison.OrdinalIgnoreCase));
                    if (valueIndex <= 0)
                        throw new TimeSeriesFormatException($"{where}: no value column named '{column}' after the time column (columns: {string.Join(", ", header)}); set intensity_column to one of them");
                }
                continue;
            }
            var cells = Split(line, sep);
            if (cells.Length <= valueIndex)
                throw new TimeSeriesFormatException($"{where}: {cells.Length} column(s), the value column is number {valueIndex + 1}; every row needs a time and a value");
            if (!DateTimeOffset.TryParse(cells[0], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowWhiteSpaces, out var t))
                throw new TimeSeriesFormatException($"{where}: '{Short(cells[0])}' is not a time; use ISO 8601 such as 2026-11-30T14:00:00Z (a time without offset is taken as UTC)");
            if (!double.TryParse(cells[valueIndex], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
                throw new TimeSeriesFormatException($"{where}: '{Short(cells[valueIndex])}' is not a number; write the {what} with a '.' decimal point, e.g. 56.2");
            if (v < min || v > max)
                throw new TimeSeriesFormatException($"{where}: {what} {v.ToString("R", CultureInfo.InvariantCulture)} is out of range; use {min.ToString(CultureInfo.InvariantCulture)}..{max.ToString(CultureInfo.InvariantCulture)}");
            long ns = (t.UtcDateTime - DateTime.UnixEpoch).Ticks * 100;
            if (starts.Count > 0 && ns <= starts[^1])
                throw new TimeSeriesFormatException($"{where}: time {t.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} is not after the previous row's; sort the rows by time and remove duplicates");
            starts.Add(ns);
            values.Add(v);
        }
        if (valueIndex < 0) throw new TimeSeriesFormatException($"{path}: empty {what} file; it needs a header line and one row per period (docs/carbon.md)");
        if (starts.Count == 0) throw new TimeSeriesFormatException($"{path}: no data row under the header; add one row per period: time,value");
        long lastStep = starts.Count > 1 ? starts[^1] - starts[^2] : 3_600_000_000_000; // a single row: one hour
        return new StepSeries(starts.ToArray(), values.ToArray(), starts[^1] + lastStep, $"file {path}");
    }

    private static string[] Split(string line, char sep) =>
        line.Split(sep).Select(c => c.Trim().Trim('"').Trim()).ToArray();

    private static string Short(string s) => s.Length > 40 ? s[..40] + "..." : s;
}
