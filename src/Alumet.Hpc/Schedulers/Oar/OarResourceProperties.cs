using System.Globalization;

namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>One line of OAR_RESOURCE_PROPERTIES_FILE: the properties of one resource of the job.</summary>
public sealed record OarResource(IReadOnlyDictionary<string, string> Properties)
{
    public string? Get(string key) => Properties.TryGetValue(key, out string? v) ? v : null;
    public string? NetworkAddress => Get("network_address");
    /// <summary>"default" for compute resources (an unset type counts as default).</summary>
    public string Type => Get("type") is { Length: > 0 } t ? t : "default";
}

/// <summary>
/// Parser for OAR_RESOURCE_PROPERTIES_FILE (&lt;OAR_RUNTIME_DIRECTORY&gt;/&lt;jobid&gt;_resources), written on every
/// node by the job resource manager's <c>init</c>. OAR 2.5 writes one resource per line, its properties in hash
/// order, as <c> key = 'value' ,</c> joined and the last comma chopped (dumped from the lab, OAR 2.5.9):
/// <code> cpu = '0' , host = 'node1' , gpudevice = '1' , core = '1' , network_address = 'node1' , cpuset = '1' </code>
/// Values are not escaped by OAR: a value ends at the quote that is followed by " , key = '" or by the end of the line.
/// </summary>
public static class OarResourceProperties
{
    public static IReadOnlyList<OarResource> Parse(string text)
    {
        var list = new List<OarResource>();
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            var props = ParseLine(line);
            if (props.Count > 0) list.Add(new OarResource(props));
        }
        return list;
    }

    public static IReadOnlyList<OarResource> ReadFile(string path) => Parse(File.ReadAllText(path));

    internal static Dictionary<string, string> ParseLine(string line)
    {
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        int i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && (line[i] == ' ' || line[i] == ',' || line[i] == '\t')) i++;
            if (i >= line.Length) break;
            int keyStart = i;
            while (i < line.Length && IsKeyChar(line[i])) i++;
            string key = line[keyStart..i];
            if (key.Length == 0 || !Expect(line, ref i, " = '")) break; // malformed tail: keep what was read
            int valueStart = i;
            int end = FindValueEnd(line, valueStart);
            props[key] = line[valueStart..end];
            i = end + 1;
        }
        return props;
    }

    /// <summary>
    /// The physical GPU ids the job owns on <paramref name="node"/>: distinct <c>gpudevice</c> values of the job's
    /// "default" resources whose network_address is that node (the same selection as OAR's devices cgroup,
    /// which denies <c>c 195:&lt;n&gt;</c> — so the value is the /dev/nvidia&lt;n&gt; minor number, equal to the NVML
    /// index on usual hosts). Empty or non-numeric values (resources without a GPU) are skipped.
    /// </summary>
    public static IReadOnlyList<int> GpuDevices(IReadOnlyList<OarResource> resources, string node)
    {
        var set = new SortedSet<int>();
        foreach (OarResource r in resources)
        {
            if (r.Type != "default" || r.NetworkAddress != node) continue;
            string? v = r.Get("gpudevice");
            if (v is null) continue;
            if (int.TryParse(v.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int idx)) set.Add(idx);
        }
        return set.ToArray();
    }

    /// <summary>Distinct network_address values of the job's default resources, in file order.</summary>
    public static IReadOnlyList<string> Nodes(IReadOnlyList<OarResource> resources)
    {
        var nodes = new List<string>();
        foreach (OarResource r in resources)
            if (r.Type == "default" && r.NetworkAddress is { Length: > 0 } n && !nodes.Contains(n)) nodes.Add(n);
        return nodes;
    }

    private static bool IsKeyChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private static bool Expect(string s, ref int i, string token)
    {
        if (string.CompareOrdinal(s, i, token, 0, token.Length) != 0) return false;
        i += token.Length;
        return true;
    }

    private static int FindValueEnd(string line, int from)
    {
        for (int q = line.IndexOf('\'', from); q >= 0; q = line.IndexOf('\'', q + 1))
        {
            int j = q + 1;
            while (j < line.Length && line[j] == ' ') j++;
            if (j >= line.Length) return q;                        // end of line
            if (line[j] != ',') continue;                          // a quote inside the value
            j++;
            while (j < line.Length && line[j] == ' ') j++;
            if (j >= line.Length) return q;                        // trailing comma
            int k = j;
            while (k < line.Length && IsKeyChar(line[k])) k++;
            if (k > j && string.CompareOrdinal(line, k, " = '", 0, 4) == 0) return q;
        }
        return line.Length; // unterminated: the rest of the line
    }
}
