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

    /// <summary>POSIX portable user names (the sampler's --user accepts the same): no '/', no spaces, no shell meta.</summary>
    public static bool IsUserName(string? s) =>
        s is { Length: > 0 and <= 64 } && (char.IsAsciiLetter(s[0]) || s[0] == '_')
        && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');

    /// <summary>Host names / OAR network_address values.</summary>
    public static bool IsNodeName(string? s) =>
        s is { Length: > 0 and <= 253 } && s[0] != '-' && s[0] != '.'
        && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');

    /// <summary>An absolute path without "..", control characters or shell-hostile characters.</summary>
    public static bool IsSafeAbsolutePath(string? s) =>
        s is { Length: > 1 and <= 4096 } && s[0] == '/'
        && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '.' or '+' or ',' or '@' or ':')
        && !s.Split('/').Contains("..");

    /// <summary>Quotes a value for a log line, bounded and with control characters escaped.</summary>
    public static string Quote(string? s)
    {
        if (s is null) return "(unset)";
        var sb = new System.Text.StringBuilder("'");
        foreach (char c in s.Length > 80 ? s[..80] : s)
            sb.Append(char.IsControl(c) ? $"\\x{(int)c:x2}" : c.ToString());
        if (s.Length > 80) sb.Append("...");
        return sb.Append('\'').ToString();
    }

    public static bool TryParseNonNegative(string? s, out int value) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
