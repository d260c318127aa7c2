using System.Runtime.InteropServices;

namespace Alumet.Hpc.Spool;

/// <summary>
/// The one reader of spool files: streams the records in bounded chunks through one reused buffer, so reading a
/// multi-GB raw spool (summary, Parquet export) allocates nothing per chunk and keeps memory flat. A torn trailing
/// record (crash mid-write) is ignored. A job's spool whose node reads are still in the node's spool
/// (<see cref="NodeReadWindows"/>) is read with them merged in, as the job's file holds them.
/// </summary>
public static class SpoolReader
{
    /// <summary>Records per chunk unless the caller says otherwise (2 MB).</summary>
    public const int ChunkRecords = 64 * 1024;

    /// <summary>Records per chunk where a pass needs no big chunk (the finalize-job child's summary and copy-in): 64 KB,
    /// below the large-object heap (85 000 bytes), so the chunk is not garbage held beside the Parquet writer's own
    /// (docs/performance-log.md, 2026-12-03).</summary>
    public const int SmallChunkRecords = 2 * 1024;

    /// <summary>
    /// The records of <paramref name="directory"/>'s spool, <paramref name="chunkRecords"/> at a time. Each chunk is
    /// a view of a reused buffer: valid until the enumeration moves on (copy what must outlive it). For a job that got
    /// the node's raw reads and whose finalization has not yet copied them in, those of its windows are merged in by
    /// time (<see cref="Merge"/>): every reader sees the records the job's file is made of.
    /// </summary>
    public static IEnumerable<ReadOnlyMemory<SpoolRecord>> ReadChunks(string directory, int chunkRecords = ChunkRecords)
    {
        var own = FileChunks(Path.Combine(directory, SpoolWriter.RecordsFile), 0, -1, chunkRecords);
        return NodeReadWindows.ReadsOf(directory, null, chunkRecords) is { } reads ? Merge(own, reads, chunkRecords) : own;
    }

    /// <summary>Records [<paramref name="start"/>, <paramref name="end"/>) of a spool.bin (<paramref name="end"/> -1: to its end), in chunks.</summary>
    internal static IEnumerable<ReadOnlyMemory<SpoolRecord>> FileChunks(string path, long start, long end, int chunkRecords)
    {
        if (!File.Exists(path)) yield break;
        long left = end < 0 ? long.MaxValue : end - start;
        if (left <= 0) yield break;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
        if (start > 0) fs.Seek(start * SpoolRecord.Size, SeekOrigin.Begin);
        // No bigger than what the file holds from there (1024 records at least: a file still being written is read on
        // past its length at open, by chunks of that): a job's spool.bin of a few splits does not take a chunk of 2 MB.
        long there = Math.Max(1024, fs.Length / SpoolRecord.Size - start);
        var buffer = new SpoolRecord[(int)Math.Min(Math.Min(chunkRecords, left), there)];
        while (left > 0)
        {
            int want = (int)Math.Min(buffer.Length, left);
            int filled = Fill(fs, MemoryMarshal.AsBytes(buffer.AsSpan(0, want)));
            int count = filled / SpoolRecord.Size;
            if (count > 0) yield return new ReadOnlyMemory<SpoolRecord>(buffer, 0, count);
            left -= count;
            if (filled < want * SpoolRecord.Size) yield break;
        }
    }

    /// <summary>
    /// The records of a spool.bin from its end, <paramref name="chunkRecords"/> at a time: the last chunk first, each
    /// in file order (read it backwards for the records from the last). A torn trailing record is left out. What looks
    /// for the last records of a kind costs what it reads, not the file.
    /// </summary>
    internal static IEnumerable<ReadOnlyMemory<SpoolRecord>> FileChunksFromTheEnd(string path, int chunkRecords)
    {
        if (!File.Exists(path)) yield break;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
        long end = fs.Length / SpoolRecord.Size;
        if (end == 0) yield break;
        var buffer = new SpoolRecord[(int)Math.Min(chunkRecords, end)];
        while (end > 0)
        {
            int count = (int)Math.Min(buffer.Length, end);
            long start = end - count;
            fs.Seek(start * SpoolRecord.Size, SeekOrigin.Begin);
            if (Fill(fs, MemoryMarshal.AsBytes(buffer.AsSpan(0, count))) < count * SpoolRecord.Size) yield break; // cut meanwhile
            yield return new ReadOnlyMemory<SpoolRecord>(buffer, 0, count);
            end = start;
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

    /// <summary>
    /// A job's own records and the node reads of its windows, merged by end time, each stream in its order: a read
    /// goes before a record of the job that ends at the same instant or later. That is the order the tick and the
    /// snapshots appended them in when both went to the job's spool: a period's reads end no later than its split (the
    /// snapshot ends the period at the latest read, MeasurementBuffer.TakeSnapshot, and its own read has the split's
    /// stamp) and the next period's reads end after it (each source's stamps only move forward).
    /// </summary>
    internal static IEnumerable<ReadOnlyMemory<SpoolRecord>> Merge(IEnumerable<ReadOnlyMemory<SpoolRecord>> own, IEnumerable<ReadOnlyMemory<SpoolRecord>> reads, int chunkRecords)
    {
        var output = new SpoolRecord[chunkRecords];
        int n = 0;
        using var a = new Cursor(own.GetEnumerator());
        using var b = new Cursor(reads.GetEnumerator());
        while (a.Has || b.Has)
        {
            // By runs: the reads up to the job's next record (ties to the reads), or the job's records before the next read.
            n += b.Has && (!a.Has || b.WallNs <= a.WallNs)
                ? b.TakeRun(output.AsSpan(n), a.Has ? a.WallNs : long.MaxValue, inclusive: true)
                : a.TakeRun(output.AsSpan(n), b.Has ? b.WallNs : long.MaxValue, inclusive: !b.Has);
            if (n < output.Length) continue;
            yield return new ReadOnlyMemory<SpoolRecord>(output, 0, n);
            n = 0;
        }
        if (n > 0) yield return new ReadOnlyMemory<SpoolRecord>(output, 0, n);
    }

    /// <summary>One record at a time over a stream of chunks.</summary>
    private sealed class Cursor : IDisposable
    {
        private readonly IEnumerator<ReadOnlyMemory<SpoolRecord>> _chunks;
        private ReadOnlyMemory<SpoolRecord> _chunk;
        private int _at;

        public Cursor(IEnumerator<ReadOnlyMemory<SpoolRecord>> chunks)
        {
            _chunks = chunks;
            Next();
        }

        public bool Has => _at < _chunk.Length;
        public long WallNs => _chunk.Span[_at].WallNs;

        /// <summary>Copies records into <paramref name="into"/> while they end before <paramref name="limit"/> (or at it,
        /// when <paramref name="inclusive"/>), within the current chunk; at least one (the caller checked the first).</summary>
        public int TakeRun(Span<SpoolRecord> into, long limit, bool inclusive)
        {
            var chunk = _chunk.Span;
            int k = 0, at = _at;
            do into[k++] = chunk[at++];
            while (k < into.Length && at < chunk.Length && (chunk[at].WallNs < limit || (inclusive && chunk[at].WallNs == limit)));
            _at = at;
            if (at == chunk.Length) Next();
            return k;
        }

        private void Next()
        {
            _at = 0;
            _chunk = default;
            while (_chunks.MoveNext())
                if (_chunks.Current.Length > 0)
                {
                    _chunk = _chunks.Current;
                    return;
                }
        }

        public void Dispose() => _chunks.Dispose();
    }

    /// <summary>Every record, one at a time (tests, small spools).</summary>
    public static IEnumerable<SpoolRecord> ReadAll(string directory)
    {
        foreach (var chunk in ReadChunks(directory))
            for (int i = 0; i < chunk.Length; i++)
                yield return chunk.Span[i];
    }
}
