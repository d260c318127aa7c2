using System.Globalization;

namespace Alumet.Hpc.Report;

/// <summary>Slurm host lists as sacct -N takes them: <c>n1</c>, <c>n[1-4,7]</c>, <c>rack[01-03]</c> (zero padding kept).</summary>
public static class HostList
{
    /// <summary>Largest expansion accepted: a typo like n[1-99999999] is an error, not a huge query.</summary>
    private const int MaxHosts = 10_000;

    /// <exception cref="FormatException">Unbalanced brackets, a bad range or too many hosts; one line for the user.</exception>
    public static IEnumerable<string> Expand(string expression)
    {
        int open = expression.IndexOf('[');
        if (open < 0)
        {
            if (expression.Contains(']')) throw Bad(expression);
            return [expression];
        }
        int close = expression.IndexOf(']', open);
        if (close < 0) throw Bad(expression);
        string prefix = expression[..open], suffix = expression[(close + 1)..];
        var hosts = new List<string>();
        foreach (var part in expression[(open + 1)..close].Split(','))
        {
            int dash = part.IndexOf('-');
            string a = dash < 0 ? part : part[..dash], b = dash < 0 ? part : part[(dash + 1)..];
            if (!long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out long lo)
                || !long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out long hi) || hi < lo || hi - lo >= MaxHosts)
                throw Bad(expression);
            for (long i = lo; i <= hi; i++)
            {
                foreach (var rest in Expand(suffix)) hosts.Add(prefix + i.ToString(CultureInfo.InvariantCulture).PadLeft(a.Length, '0') + rest);
                if (hosts.Count > MaxHosts) throw Bad(expression);
            }
        }
        return hosts;
    }

    private static FormatException Bad(string e) =>
        new($"invalid node list '{ReportCommand.Printable(e)}' (use n1,n2 or n[1-4,7], at most {MaxHosts} nodes)");
}
