using System.Globalization;

namespace Alumet.Hpc.Report;

/// <summary>Slurm host lists as sacct -N takes them and prints them: <c>n1</c>, <c>n[1-4,7]</c>, <c>rack[01-03]</c> (zero padding kept).</summary>
public static class HostList
{
    /// <summary>
    /// A comma list of host lists, split on the commas outside brackets: <c>n[1-4,7],gpu1</c> is two expressions, not
    /// three (sacct -N takes the bracketed form). The end of the list ends the last expression even inside an unclosed
    /// bracket, so that <see cref="Expand"/> refuses it (it used to vanish, and with it the whole -N filter).
    /// </summary>
    public static IEnumerable<string> SplitExpressions(string? list)
    {
        if (string.IsNullOrWhiteSpace(list)) yield break;
        int depth = 0, start = 0;
        for (int i = 0; i <= list.Length; i++)
        {
            char c = i < list.Length ? list[i] : ',';
            if (c == '[') depth++;
            else if (c == ']') depth--;
            else if (c == ',' && (depth <= 0 || i == list.Length))
            {
                string e = list[start..i].Trim();
                if (e.Length > 0) yield return e;
                start = i + 1;
                depth = 0;
            }
        }
    }

    /// <summary>
    /// The ranged form sacct prints in NodeList: hosts sharing a prefix and digit width are merged into one bracket
    /// (<c>n1,n2,n3,n7</c> → <c>n[1-3,7]</c>; <c>n01,n02</c> → <c>n[01-02]</c>); prefixes keep their first order,
    /// numbers are sorted, a lone host stays bare, a name without a trailing number is printed as it is.
    /// </summary>
    public static string Compress(IReadOnlyList<string> hosts)
    {
        if (hosts.Count == 1) return hosts[0];
        var groups = new List<(string Prefix, int Width, List<long> Numbers)>();
        var order = new List<object>();
        // Zero-padded widths per prefix, so that n10 joins n01's group (n[01-02,10]) as in Slurm's hostlists.
        var padded = new HashSet<(string, int)>();
        foreach (var h in hosts)
            if (NumberStart(h) is int d0 && h[d0] == '0' && h.Length - d0 > 1) padded.Add((h[..d0], h.Length - d0));
        foreach (var h in hosts)
        {
            // No trailing number, or one too long for a long: print as it is.
            if (NumberStart(h) is not int d)
            {
                if (!order.Contains(h)) order.Add(h);
                continue;
            }
            string prefix = h[..d];
            int width = padded.Contains((prefix, h.Length - d)) ? h.Length - d : 0; // 0: unpadded
            long n = long.Parse(h.AsSpan(d), NumberStyles.None, CultureInfo.InvariantCulture);
            int g = groups.FindIndex(x => x.Prefix == prefix && x.Width == width);
            if (g < 0)
            {
                groups.Add((prefix, width, []));
                g = groups.Count - 1;
                order.Add(g);
            }
            if (!groups[g].Numbers.Contains(n)) groups[g].Numbers.Add(n);
        }
        var parts = new List<string>();
        foreach (var o in order)
        {
            if (o is string s) { parts.Add(s); continue; }
            var (prefix, width, numbers) = groups[(int)o];
            numbers.Sort();
            string Num(long v) => v.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
            if (numbers.Count == 1) { parts.Add(prefix + Num(numbers[0])); continue; }
            var ranges = new List<string>();
            for (int i = 0; i < numbers.Count;)
            {
                int j = i;
                while (j + 1 < numbers.Count && numbers[j + 1] == numbers[j] + 1) j++;
                ranges.Add(j == i ? Num(numbers[i]) : $"{Num(numbers[i])}-{Num(numbers[j])}");
                i = j + 1;
            }
            parts.Add($"{prefix}[{string.Join(',', ranges)}]");
        }
        return string.Join(',', parts);
    }

    private static int? NumberStart(string h)
    {
        int d = h.Length;
        while (d > 0 && char.IsAsciiDigit(h[d - 1])) d--;
        return d == h.Length || h.Length - d > 18 ? null : d;
    }

    /// <summary>Largest expansion accepted: a typo like n[1-99999999] is an error, not a huge query.</summary>
    private const int MaxHosts = 10_000;

    /// <exception cref="FormatException">Unbalanced brackets, a bad range or too many hosts; one line for the user.</exception>
    public static IEnumerable<string> Expand(string expression)
    {
        Count(expression); // at most MaxHosts, said before any name is built
        return Build(expression);
    }

    /// <summary>The hosts of an expression <see cref="Count"/> accepted; what follows its first bracket built once.</summary>
    private static List<string> Build(string expression)
    {
        if (Parse(expression) is not { } e) return [expression];
        var rests = Build(e.Suffix);
        var hosts = new List<string>();
        foreach (var (lo, hi, width) in e.Ranges)
            for (long i = lo; i <= hi; i++)
            {
                string head = e.Prefix + i.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0');
                foreach (var rest in rests) hosts.Add(head + rest);
            }
        return hosts;
    }

    /// <summary>
    /// How many hosts <paramref name="expression"/> names, without building them: the report's limit on listed values is
    /// checked on this (a list of expressions of 10 000 hosts each used to be built whole, gigabytes, before it was refused).
    /// </summary>
    /// <exception cref="FormatException">As <see cref="Expand"/>, for the same expressions.</exception>
    public static long Count(string expression)
    {
        if (Parse(expression) is not { } e) return 1;
        long n = 0;
        foreach (var (lo, hi, _) in e.Ranges)
            if ((n += (hi - lo + 1) * Count(e.Suffix)) > MaxHosts) throw Bad(expression);
        return n;
    }

    /// <summary>The first bracket of <paramref name="expression"/>: the text before it, its ranges (digit width kept), the
    /// text after it; null when it has none.</summary>
    private static (string Prefix, List<(long Lo, long Hi, int Width)> Ranges, string Suffix)? Parse(string expression)
    {
        int open = expression.IndexOf('[');
        if (open < 0)
        {
            if (expression.Contains(']')) throw Bad(expression);
            return null;
        }
        int close = expression.IndexOf(']', open);
        if (close < 0) throw Bad(expression);
        var ranges = new List<(long Lo, long Hi, int Width)>();
        foreach (var part in expression[(open + 1)..close].Split(','))
        {
            int dash = part.IndexOf('-');
            string a = dash < 0 ? part : part[..dash], b = dash < 0 ? part : part[(dash + 1)..];
            if (!long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out long lo)
                || !long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out long hi) || hi < lo || hi - lo >= MaxHosts)
                throw Bad(expression);
            ranges.Add((lo, hi, a.Length));
        }
        return (expression[..open], ranges, expression[(close + 1)..]);
    }

    private static FormatException Bad(string e) =>
        new($"invalid node list '{ReportCommand.Printable(e)}' (use n1,n2 or n[1-4,7], at most {MaxHosts} nodes)");
}
