using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Spool;

/// <summary>
/// Append-only spool of raw records. Records accumulate in a small buffer and reach the file at each
/// <see cref="Flush"/> (every flush interval, ≤ 5 s by default 1 s) and whenever the buffer holds <see cref="WriteBytes"/>:
/// a kill -9 loses at most one interval, and everything flushed stays readable because the format is a plain array of
/// fixed-size records. The buffer's size, not the flush interval, bounds the memory: at raw storage a spool gets every
/// read (6 counters × 1 kHz × 32 B ≈ 190 KB a second on a 2-socket node, 4 times that on 8 sockets), which a buffer
/// holding a whole interval kept resident in every spool that had taken raw reads (README Performance, peak RSS).
/// Why a spool and not Parquet part files: appending 32-byte records costs a memcpy per sample and one write(2)
/// per flush or 16 KiB, keeps memory constant, and Parquet's footer-at-the-end format cannot be read after a crash.
/// The spool is converted to Parquet, in bounded row groups, when the job ends.
/// </summary>
public sealed class SpoolWriter : IDisposable
{
    public const string RecordsFile = "spool.bin";
    public const string MetaFile = "meta.json";

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly string _directory;
    private readonly SpoolMeta _meta;
    private bool _metaChanged;
    private byte[] _buffer;
    private readonly int _maxBytes; // what the buffer may grow to while writes fail, every record kept; then merged per series
    private int _steadyBytes;       // its size while writes work: WriteBytes, or the largest group reserved (Reserve)
    private int _used;
    private long _offset;
    private DateTime? _failingSince;
    private readonly List<string> _writeFailures = new();

    public long RecordsWritten { get; private set; }

    /// <summary>Each episode of failed writes, once over: "state dir full from … to …" (for the job's row).</summary>
    public IReadOnlyList<string> WriteFailures => _writeFailures;

    /// <summary>
    /// The buffer is written once it holds this much (16 KiB, 512 records), as well as every flush interval. Small
    /// enough that a spool's memory stays a few pages whatever the read rate and flush interval; large enough that a
    /// 1 kHz raw spool of 6 counters makes ~12 writes a second (page cache, no fsync), not one per read.
    /// </summary>
    public const int WriteBytes = 16 * 1024;

    /// <param name="bufferRecords">Records kept, each with its own time, while the file cannot be written (a full
    /// state dir): beyond that they are merged per series (totals kept). The buffer grows to it only then.</param>
    public SpoolWriter(string directory, SpoolMeta meta, int bufferRecords = 64 * 1024)
    {
        Directory.CreateDirectory(directory);
        _directory = directory;
        _meta = meta;
        WriteMeta(directory, meta);
        string path = Path.Combine(directory, RecordsFile);
        _path = path;
        _file = File.OpenHandle(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        _offset = RandomAccess.GetLength(_file);
        _offset -= _offset % SpoolRecord.Size; // never append after a torn record
        _maxBytes = bufferRecords * SpoolRecord.Size;
        _steadyBytes = Math.Min(WriteBytes, _maxBytes);
        _buffer = NewBuffer(_steadyBytes);
    }

    private static byte[] NewBuffer(int bytes) => GC.AllocateUninitializedArray<byte>(bytes, pinned: true);

    /// <summary>
    /// Room for <paramref name="records"/> more records before the buffer is next written. A caller appending a group
    /// that must reach the file whole or not at all reserves it first: one period's split (node = Σ jobs +
    /// unattributed, NodeSampler's snapshot), which a write in the middle of it would leave half in the file, and a
    /// sampler killed right then would leave an interval that does not conserve. Writes what is buffered when the
    /// group does not fit; a group larger than the buffer (many jobs × channels) makes the buffer that large for good.
    /// </summary>
    public void Reserve(int records)
    {
        int bytes = records * SpoolRecord.Size;
        if (_used + bytes <= _buffer.Length) return;
        if (_used > 0) Flush();
        if (_used + bytes <= _buffer.Length) return;
        if (_failingSince is null)
        {
            _steadyBytes = bytes;
            Resize(bytes);
            return;
        }
        // Writes fail: the records wait in memory, each with its time, as long as the buffer may grow; then merged.
        if (_used + bytes > _maxBytes) Merge();
        if (_used + bytes > _buffer.Length) Resize(Math.Max(_used + bytes, Math.Min(_maxBytes, 2 * _buffer.Length)));
    }

    /// <summary>A buffer of <paramref name="bytes"/> holding the buffered records (never fewer bytes than they take).</summary>
    private void Resize(int bytes)
    {
        var grown = NewBuffer(Math.Max(bytes, _used));
        _buffer.AsSpan(0, _used).CopyTo(grown);
        _buffer = grown;
    }

    public static void WriteMeta(string directory, SpoolMeta meta)
    {
        Core.AtomicFile.WriteAllText(Path.Combine(directory, MetaFile), JsonSerializer.Serialize(meta, SpoolJsonContext.Default.SpoolMeta));
    }

    public static SpoolMeta ReadMeta(string directory)
    {
        string path = Path.Combine(directory, MetaFile);
        return JsonSerializer.Deserialize(File.ReadAllText(path), SpoolJsonContext.Default.SpoolMeta)
            ?? throw new InvalidDataException($"{path}: empty spool metadata");
    }

    /// <summary>
    /// The metadata changed (a series was added, a label changed): meta.json is rewritten at the next <see cref="Flush"/>, before the
    /// records, so a record in the file never names a series meta.json does not list. Once per flush, not once per
    /// series: a period that adds many series (16 jobs registered at once) rewrote the whole file for each, quadratic.
    /// </summary>
    public void MetaChanged() => _metaChanged = true;

    /// <summary>Buffers one record; flushes first if the buffer is full. No allocation while writes succeed.</summary>
    public void Append(in SpoolRecord record)
    {
        if (_used + SpoolRecord.Size > _buffer.Length) Flush();
        if (_used + SpoolRecord.Size > _buffer.Length) MergePerSeries(); // the file cannot take them: keep totals in memory
        MemoryMarshal.Write(_buffer.AsSpan(_used), in record);
        _used += SpoolRecord.Size;
        RecordsWritten++;
    }

    /// <summary>
    /// Writes buffered records to the file (one write(2)). Page cache, not fsync: survives a process crash.
    /// A failed write (state dir full, I/O error) keeps the records and is retried at the next flush, so once space
    /// returns at most what a crash would lose is lost; the episode is logged once when it starts and once when it
    /// ends, never per flush.
    /// </summary>
    public void Flush()
    {
        if (_used == 0 && !_metaChanged) return;
        try
        {
            if (_metaChanged)
            {
                WriteMeta(_directory, _meta);
                _metaChanged = false;
            }
            // A short write followed by an error leaves a prefix at _offset: the retry rewrites it with the same bytes.
            if (_used > 0) RandomAccess.Write(_file, _buffer.AsSpan(0, _used), _offset);
        }
        catch (IOException e)
        {
            if (_failingSince is null)
            {
                _failingSince = DateTime.UtcNow;
                Core.Log.Error($"spool {_path}: write failed ({e.Message}); records are kept in memory (merged per series when the buffer fills: totals are kept) and retried every flush");
            }
            return;
        }
        _offset += _used;
        _used = 0;
        if (_failingSince is { } since)
        {
            // Records merged while failing can be shorter than a prefix a failed write left: cut what lies beyond.
            if (RandomAccess.GetLength(_file) > _offset) RandomAccess.SetLength(_file, _offset);
            if (_buffer.Length > _steadyBytes) _buffer = NewBuffer(_steadyBytes); // what the episode grew is given back to the GC
            var now = DateTime.UtcNow;
            _writeFailures.Add($"state dir full from {since:yyyy-MM-ddTHH:mm:ssZ} to {now:yyyy-MM-ddTHH:mm:ssZ} (time resolution lost meanwhile, totals kept)");
            Core.Log.Info($"spool {_path}: writing again after {(now - since).TotalSeconds:0} s of failed writes; nothing lost");
            _failingSince = null;
        }
    }

    /// <summary>
    /// <see cref="Append"/> found the buffer full and the file cannot take it (writes fail): the buffer doubles, every
    /// record kept with its time, up to <c>bufferRecords</c>; past that the records are merged per series (<see cref="Merge"/>).
    /// </summary>
    private void MergePerSeries()
    {
        if (_buffer.Length < _maxBytes)
        {
            Resize(Math.Min(_maxBytes, 2 * _buffer.Length));
            return;
        }
        Merge();
        if (_used + SpoolRecord.Size > _buffer.Length)
            throw new IOException($"spool {_path}: more series than the buffer holds while the file cannot be written");
    }

    /// <summary>
    /// Merges the buffered records of each series into one (energy and interval added, the last end time, flags
    /// or-ed), in series order of first appearance: the buffer then holds at most one record per series, and every
    /// series' total is unchanged. Only while writes fail.
    /// </summary>
    private void Merge()
    {
        var records = MemoryMarshal.Cast<byte, SpoolRecord>(_buffer.AsSpan(0, _used));
        var slotOf = new Dictionary<int, int>();
        int n = 0;
        for (int i = 0; i < records.Length; i++)
        {
            var r = records[i];
            if (slotOf.TryGetValue(r.Series, out int k))
            {
                ref var m = ref records[k];
                m.Value += r.Value;
                m.IntervalNs += r.IntervalNs;
                m.WallNs = Math.Max(m.WallNs, r.WallNs);
                m.Flags |= r.Flags;
            }
            else
            {
                slotOf[r.Series] = n;
                records[n++] = r;
            }
        }
        _used = n * SpoolRecord.Size;
    }

    /// <summary>Flushes and closes. Records still unwritable are counted in <see cref="UnwrittenRecords"/>.</summary>
    public void Dispose()
    {
        Flush();
        UnwrittenRecords = _used / SpoolRecord.Size;
        if (_failingSince is { } since)
            _writeFailures.Add($"state dir full from {since:yyyy-MM-ddTHH:mm:ssZ} to the end of the job: the last {UnwrittenRecords} record(s) could not be written");
        _file.Dispose();
    }

    /// <summary>Records that could not be written by <see cref="Dispose"/> (the state dir still full).</summary>
    public long UnwrittenRecords { get; private set; }
}
