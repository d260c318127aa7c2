namespace Alumet.Hpc.Schedulers;

/// <summary>
/// Validation of the strings a scheduler hands to a hook. Everything the job owner can influence passes
/// through here before it names a file, a cgroup or a database row: anything outside these narrow
/// alphabets is refused (never escaped, never passed to a shell).
/// </summary>
public static class SchedulerInput
{
    /// <summary>A job id: 1-20 ASCII digits (Slurm ids are 32-bit, OAR ids 64-bit).</summary>
    public static bool IsJobId(string? s) => s is { Length: > 0 and <= 20 } && AllDigits(s);

    /// <summary>A uid or gid: ASCII digits that fit a non-negative int.</summary>
    public static bool TryParseId(string? s, out int id)
    {
        id = -1;
        if (s is not { Length: > 0 and <= 10 } || !AllDigits(s)) return false;
        if (!long.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v) || v > int.MaxValue) return false;
        id = (int)v;
        return true;
    }

    /// <summary>
    /// A user name: POSIX portable names, [A-Za-z_] then up to 63 of [A-Za-z0-9._-], plus the '$' of machine
    /// accounts at the end: the same rule as <c>alumet-hpc sample --user</c>, so a name the hook accepts
    /// never makes the sampler refuse to start.
    /// </summary>
    public static bool IsUserName(string? s)
    {
        if (s is null) return false;
        string core = s.EndsWith('$') ? s[..^1] : s;
        if (core.Length is 0 or > 64 || !(char.IsAsciiLetter(core[0]) || core[0] == '_')) return false;
        foreach (char c in core)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')) return false;
        return true;
    }

    /// <summary>A node or cluster name: 1-253 chars (a fully qualified host name) of [A-Za-z0-9_.-], starting with a letter or digit.</summary>
    public static bool IsName(string? s)
    {
        if (s is not { Length: > 0 and <= 253 } || !char.IsAsciiLetterOrDigit(s[0])) return false;
        foreach (char c in s)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')) return false;
        return true;
    }

    /// <summary>An opaque token such as a Slurm SLUID: 1-64 ASCII letters and digits.</summary>
    public static bool IsToken(string? s)
    {
        if (s is not { Length: > 0 and <= 64 }) return false;
        foreach (char c in s)
            if (!char.IsAsciiLetterOrDigit(c)) return false;
        return true;
    }

    /// <summary>A printable, bounded rendering of an untrusted value for log lines.</summary>
    public static string Quote(string? s)
    {
        if (s is null) return "(unset)";
        var sb = new System.Text.StringBuilder("\"");
        foreach (char c in s.Length > 80 ? s[..80] : s)
            sb.Append(c is >= ' ' and <= '~' and not '"' and not '\\' ? c.ToString() : $"\\x{(int)c:x2}");
        if (s.Length > 80) sb.Append("...");
        return sb.Append('"').ToString();
    }

    private static bool AllDigits(string s)
    {
        foreach (char c in s)
            if (!char.IsAsciiDigit(c)) return false;
        return true;
    }
}
