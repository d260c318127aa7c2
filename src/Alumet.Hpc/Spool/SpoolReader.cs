using System.Runtime.InteropServices;

namespace Alumet.Hpc.Spool;

/// <summary>Streams the records of a spool in bounded chunks; a torn trailing record is ignored.</summary>
public static class SpoolReader
{
    public static IEnumerable<SpoolRecord[]> ReadChunks(string directory, int chunkRecords = 64 * 1024)
    {
        string path = Path.Combine(directory, SpoolWriter.RecordsFile);
        if (!File.Exists(path)) yield break;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        var bytes = new byte[chunkRecords * SpoolRecord.Size];
        while (true)
        {
            int filled = 0;
            while (filled < bytes.Length)
            {
                int n = fs.Read(bytes, filled, bytes.Length - filled);
                if (n == 0) break;
                filled += n;
            }
            int count = filled / SpoolRecord.Size;
            if (count == 0) yield break;
            yield return MemoryMarshal.Cast<byte, SpoolRecord>(bytes.AsSpan(0, count * SpoolRecord.Size)).ToArray();
            if (filled < bytes.Length) yield break;
        }
    }

    public static IEnumerable<SpoolRecord> ReadAll(string directory)
    {
        foreach (var chunk in ReadChunks(directory))
            foreach (var r in chunk)
                yield return r;
    }
}
