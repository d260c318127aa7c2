using System.Globalization;
using System.Text.RegularExpressions;

namespace Alumet.Hpc.Report;

/// <summary>
/// sacct's <c>-S/--starttime</c> and <c>-E/--endtime</c> values (sacct(1), "TIME FORMATS"), read in the caller's time
/// zone: the forms of <see cref="Patterns"/> and the names of <see cref="Named"/>, which are also what the error lists.
/// </summary>
public static partial class SacctTime
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    [GeneratedRegex(@"^now(?:([+-])(\d{1,9})(seconds|second|sec|s|minutes|minute|min|hours|hour|h|days|day|d|weeks|week|w)?)?$", RegexOptions.IgnoreCase)]
    private static partial Regex Relative();

    [GeneratedRegex(@"^(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?$")]
    private static partial Regex ClockTime();

    [GeneratedRegex(@"^(\d{2})[/.]?(\d{2})(?:[/.]?(\d{2}))?(?:-(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")]
    private static partial Regex MonthDay();

    [GeneratedRegex(@"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$")]
    private static partial Regex IsoDate();

    /// <summary>The forms the regular expressions above read, as the error lists them (README, alumet-report).</summary>
    private static readonly string[] Patterns =
    [
        "YYYY-MM-DD[THH:MM[:SS]]", "MMDD[YY][-HH:MM[:SS]]", "MM/DD[/YY][-HH:MM[:SS]]", "MM.DD[.YY][-HH:MM[:SS]]",
        "HH:MM[:SS][AM|PM]", "now[{+|-}N[seconds|minutes|hours|days|weeks]]",
    ];

    /// <summary>sacct's named times: the time of day they name (tomorrow: midnight of the next day).</summary>
    private static readonly (string Name, TimeSpan FromMidnight)[] Named =
    [
        ("today", TimeSpan.Zero), ("midnight", TimeSpan.Zero), ("noon", TimeSpan.FromHours(12)), ("elevenses", TimeSpan.FromHours(11)),
        ("fika", TimeSpan.FromHours(15)), ("teatime", TimeSpan.FromHours(16)), ("tomorrow", TimeSpan.FromDays(1)),
    ];

    /// <summary>Every accepted form and name, in the error message: one list with what <see cref="Parse"/> reads.</summary>
    public static readonly string Formats = string.Join(", ", [.. Patterns, .. Named.Select(n => n.Name)]);

    /// <summary>The instant (UTC) that <paramref name="text"/> names, with <paramref name="nowUtc"/> as "now".</summary>
    /// <exception cref="FormatException">Not one of sacct's formats; the message is one line for the user.</exception>
    public static DateTime Parse(string text, DateTime nowUtc, TimeZoneInfo zone)
    {
        string s = text.Trim();
        DateTime nowLocal = TimeZoneInfo.ConvertTimeFromUtc(DateTime.SpecifyKind(nowUtc, DateTimeKind.Utc), zone);
        DateTime today = nowLocal.Date;
        DateTime? local = null;
        foreach (var (name, fromMidnight) in Named)
            if (s.Equals(name, StringComparison.OrdinalIgnoreCase)) local = today + fromMidnight;
        if (local is null && Relative().Match(s) is { Success: true } rel)
        {
            if (!rel.Groups[1].Success) return DateTime.SpecifyKind(nowUtc, DateTimeKind.Utc);
            long n = long.Parse(rel.Groups[2].Value, Inv) * (rel.Groups[1].Value == "-" ? -1 : 1);
            string unit = rel.Groups[3].Success ? rel.Groups[3].Value.ToLowerInvariant() : "s";
            double seconds = unit[0] switch { 'm' => 60, 'h' => 3600, 'd' => 86400, 'w' => 7 * 86400, _ => 1 };
            return Checked(text, () => DateTime.SpecifyKind(nowUtc, DateTimeKind.Utc).AddSeconds(n * seconds)); // past year 1 or 9999: a sentence
        }
        if (local is null && ClockTime().Match(s) is { Success: true } clock)
        {
            int h = int.Parse(clock.Groups[1].Value, Inv), m = int.Parse(clock.Groups[2].Value, Inv);
            int sec = clock.Groups[3].Success ? int.Parse(clock.Groups[3].Value, Inv) : 0;
            if (clock.Groups[4].Success)
            {
                if (h < 1 || h > 12) throw Bad(text);
                bool pm = char.ToLowerInvariant(clock.Groups[4].Value[0]) == 'p';
                h = h % 12 + (pm ? 12 : 0);
            }
            local = Checked(text, () => today.Add(new TimeSpan(h, m, sec)), h < 24 && m < 60 && sec < 60);
        }
        if (local is null && IsoDate().Match(s) is { Success: true } iso)
        {
            local = Checked(text, () => new DateTime(Int(iso, 1), Int(iso, 2), Int(iso, 3),
                iso.Groups[4].Success ? Int(iso, 4) : 0, iso.Groups[5].Success ? Int(iso, 5) : 0, iso.Groups[6].Success ? Int(iso, 6) : 0));
        }
        if (local is null && MonthDay().Match(s) is { Success: true } md)
        {
            int year = md.Groups[3].Success ? 2000 + Int(md, 3) : today.Year;
            int h = md.Groups[4].Success ? Int(md, 4) : 0, m = md.Groups[5].Success ? Int(md, 5) : 0, sec = md.Groups[6].Success ? Int(md, 6) : 0;
            local = Checked(text, () => new DateTime(year, Int(md, 1), Int(md, 2), h, m, sec));
        }
        if (local is not { } l) throw Bad(text);
        var unspecified = DateTime.SpecifyKind(l, DateTimeKind.Unspecified);
        // A local time that a DST change skips does not exist; take the instant one hour later, as mktime does.
        if (zone.IsInvalidTime(unspecified)) unspecified = unspecified.AddHours(1);
        return TimeZoneInfo.ConvertTimeToUtc(unspecified, zone);
    }

    private static int Int(Match m, int g) => int.Parse(m.Groups[g].Value, Inv);

    private static DateTime Checked(string text, Func<DateTime> make, bool ok = true)
    {
        if (!ok) throw Bad(text);
        try { return make(); }
        catch (ArgumentOutOfRangeException) { throw Bad(text); }
    }

    private static FormatException Bad(string text) =>
        new($"invalid time '{ReportFields.Untrusted(text.Length > 40 ? text[..40] + "..." : text)}' (use {Formats})");
}
