using System.Runtime.InteropServices;

namespace Alumet.Hpc.Spool;

/// <summary>
/// The one reader of spool files: streams the records in bounded chunks through one reused buffer, so reading a
/// multi-GB raw spool (summary, Parquet export) allocates nothing per chunk and keeps memory flat. A torn trailing
/// record (crash mid-write) is ignored.
/// </summary>
public static class SpoolReader
{
    /// <summary>
    /// The records of <paramref name="directory"/>'s spool, <paramref name="chunkRecords"/> at a time. Each chunk is
    /// a view of a reused buffer: valid until the enumeration moves on (copy what must outlive it).
    /// </summary>
    public static IEnumerable<ReadOnlyMemory<SpoolRecord>> ReadChunks(string directory, int chunkRecords = 64 * 1024)
    {
        string path = Path.Combine(directory, SpoolWriter.RecordsFile);
        if (!File.Exists(path)) yield break;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
        var buffer = new SpoolRecord[chunkRecords];
        while (true)
        {
            int filled = Fill(fs, MemoryMarshal.AsBytes(buffer.AsSpan()));
            int count = filled / SpoolRecord.Size;
            if (count > 0) yield return new ReadOnlyMemory<SpoolRecord>(buffer, 0, count);
            if (filled < buffer.Length * SpoolRecord.Size) yield break;
        }
    }

    private static int Fill(FileStream fs, Span<byte> dest)
    {
        int filled = 0;
        while (filled < dest.Length)
        {
            int n = fs.Read(dest[filled..]);
            if (n == 0) break;
            filled += n;
        }
        return filled;
    }

    /// <summary>Every record, one at a time (tests, small spools).</summary>
    public static IEnumerable<SpoolRecord> ReadAll(string directory)
    {
        foreach (var chunk in ReadChunks(directory))
            for (int i = 0; i < chunk.Length; i++)
                yield return chunk.Span[i];
    }
}
