using System.Globalization;

namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>
/// Narrow alphabets for every OAR-supplied value that will name a file, a cgroup or a DB row.
/// Values are never passed to a shell; these checks keep them from escaping a path or a log line.
/// </summary>
internal static class OarInput
{
    /// <summary>OAR job ids are positive integers (the jobs table's serial key).</summary>
    public static bool IsJobId(string? s) =>
        s is { Length: > 0 and <= 18 } && s[0] != '0' && s.All(char.IsAsciiDigit);

    /// <summary>The rule every hook and the sampler share (<see cref="SchedulerInput.IsUserName"/>).</summary>
    public static bool IsUserName(string? s) => SchedulerInput.IsUserName(s);

    /// <summary>Host names / OAR network_address values (<see cref="SchedulerInput.IsName"/>).</summary>
    public static bool IsNodeName(string? s) => SchedulerInput.IsName(s);

    /// <summary>An absolute path without "..", control characters or shell-hostile characters.</summary>
    public static bool IsSafeAbsolutePath(string? s) =>
        s is { Length: > 1 and <= 4096 } && s[0] == '/'
        && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '.' or '+' or ',' or '@' or ':')
        && !s.Split('/').Contains("..");

    /// <summary>Quotes a value for a log line (<see cref="SchedulerInput.Quote"/>).</summary>
    public static string Quote(string? s) => SchedulerInput.Quote(s);

    public static bool TryParseNonNegative(string? s, out int value) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
