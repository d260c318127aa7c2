namespace Alumet.Hpc.Jobs;

/// <summary>Physical GPU indices as schedulers pass them ("0,2"): digits and commas only.</summary>
public static class GpuIndices
{
    public static bool TryParse(string? text, out IReadOnlyList<int> indices)
    {
        var list = new List<int>();
        indices = list;
        if (string.IsNullOrWhiteSpace(text)) return true;
        foreach (string part in text.Split(','))
        {
            string p = part.Trim();
            if (p.Length is 0 or > 4 || !p.All(char.IsAsciiDigit)) return false;
            int i = int.Parse(p);
            if (!list.Contains(i)) list.Add(i);
        }
        return true;
    }
}
