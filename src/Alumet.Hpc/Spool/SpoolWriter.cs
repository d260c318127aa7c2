using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Spool;

/// <summary>
/// Append-only spool of raw records. Records accumulate in a buffer and reach the file at each <see cref="Flush"/>
/// (every flush interval, ≤ 5 s by default 1 s) and whenever it holds <see cref="WriteBytes"/>: a kill -9 loses at most
/// one interval, and everything flushed stays readable because the format is a plain array of fixed-size records.
/// The buffer is reserved large (64 K records, 2 MB) and left uninitialized: only the pages it uses are memory, and
/// writing at 16 KiB keeps that to 4 pages whatever the read rate and flush interval (at raw storage a spool gets every
/// read: 6 counters × 1 kHz × 32 B ≈ 190 KB a second on a 2-socket node, which a buffer written only at the flush kept
/// resident in every spool that had taken raw reads; README Performance, peak RSS). The rest of it holds the records
/// while writes fail (a full state dir).
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
    private readonly byte[] _buffer;
    private int _used;
    private int _group;  // records of a reserved group still to come: no write in its middle (Reserve)
    private long _offset;
    private DateTime? _failingSince;
    private readonly List<string> _writeFailures = new();
    private volatile bool _detached;

    public long RecordsWritten { get; private set; }

    /// <summary>
    /// The index in spool.bin of the next record appended (those in the file, then those buffered): where a window of
    /// the node spool's raw reads that a job's file gets begins or ends (<see cref="NodeReadWindows"/>). Exact while
    /// writes succeed; a full state dir's merge (<see cref="MergePerSeries"/>) moves the buffered records' places.
    /// </summary>
    public long NextRecord => (_offset + _used) / SpoolRecord.Size;

    /// <summary>Writes are failing (a full state dir): what is buffered is not in the file yet.</summary>
    public bool Failing => _failingSince is not null;

    /// <summary>
    /// <see cref="Append"/> writes the buffer once it holds this much (16 KiB, 512 records), as well as every flush
    /// interval: a spool's memory is a few pages whatever the read rate, and a 1 kHz raw spool of 6 counters makes ~12
    /// writes a second (page cache, no fsync), not one per read.
    /// </summary>
    public const int WriteBytes = 16 * 1024;

    /// <summary>Each episode of failed writes, once over: "state dir full from … to …" (for the job's row).</summary>
    public IReadOnlyList<string> WriteFailures => _writeFailures;

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
        _buffer = GC.AllocateUninitializedArray<byte>(bufferRecords * SpoolRecord.Size, pinned: true);
    }

    // Every spool's meta.json is serialized here, as UTF-8 into one buffer kept for the process: a registration burst at
    // raw storage rewrites the node spool's 100-series file several times a second, and through a string each rewrite
    // made three copies of it in garbage, which the daemon's peak RSS carried (README Performance, peak RSS).
    private static readonly Lock MetaGate = new();
    private static readonly ArrayBufferWriter<byte> MetaBytes = new(4096);
    private static Utf8JsonWriter? _metaJson;

    /// <summary>Replaces <paramref name="directory"/>'s meta.json whole (temporary file + rename).</summary>
    public static void WriteMeta(string directory, SpoolMeta meta)
    {
        lock (MetaGate)
        {
            MetaBytes.ResetWrittenCount();
            if (_metaJson is null) _metaJson = new Utf8JsonWriter(MetaBytes, new JsonWriterOptions { Indented = true });
            else _metaJson.Reset(MetaBytes);
            JsonSerializer.Serialize(_metaJson, meta, SpoolJsonContext.Default.SpoolMeta);
            _metaJson.Flush();
            Core.AtomicFile.WriteAllBytes(Path.Combine(directory, MetaFile), MetaBytes.WrittenSpan);
        }
    }

    /// <summary>
    /// Gives <paramref name="directory"/>'s spool.bin a new inode that no writer holds: a durable copy renamed over the
    /// original (<see cref="Core.AtomicFile.ReplaceWithCopy"/>). A writer that still holds the old file open — a node
    /// sampler hung (SIGSTOP) past stop_timeout_s, whose epilog finalizes the job without it (JobFinalizer) — writes at
    /// its own offset into the old, unlinked inode from then on, whenever it resumes: never over what the finalization
    /// reads, nor into the spool a kept state dir keeps. Costs one copy of the file. False when there is no spool.bin.
    /// </summary>
    public static bool DetachFromWriters(string directory)
    {
        string path = Path.Combine(directory, RecordsFile);
        if (!File.Exists(path)) return false;
        Core.AtomicFile.ReplaceWithCopy(path, path);
        return true;
    }

    public static SpoolMeta ReadMeta(string directory)
    {
        string path = Path.Combine(directory, MetaFile);
        return JsonSerializer.Deserialize(File.ReadAllText(path), SpoolJsonContext.Default.SpoolMeta)
            ?? throw new InvalidDataException($"{path}: empty spool metadata");
    }

    /// <summary>
    /// Whether another process gave spool.bin a new inode since this writer opened it (<see cref="DetachFromWriters"/>: the
    /// job's epilog took it over from a hung sampler, JobFinalizer). From then on this writer writes nothing more: neither
    /// records (into the unlinked old file) nor meta.json, which goes by path into the directory the epilog finalized (a
    /// kept state dir keeps it). One fstat and one stat: before each rewrite of meta.json, and when the node sampler's
    /// periodic flush asks (<see cref="CheckDetached"/>), never per read. A spool.bin that is gone (the state dir removed
    /// after the finalization) is not a detach: the write fails as before.
    /// </summary>
    public bool Detached => _detached;

    /// <summary>Compares the file this writer holds with spool.bin's path (<see cref="Detached"/>); true once detached.</summary>
    public bool CheckDetached()
    {
        if (!_detached && Native.Libc.IsSameFile(_file, _path) == false)
        {
            _detached = true;
            Core.Log.Warn($"spool {_path}: another process took it over (the job's epilog finalized it while this sampler was not answering); nothing more is written there");
        }
        return _detached;
    }

    /// <summary>
    /// The metadata changed (a series was added, a label changed): meta.json is rewritten at the next <see cref="Flush"/>, before the
    /// records, so a record in the file never names a series meta.json does not list. Once per flush, not once per
    /// series: a period that adds many series (16 jobs registered at once) rewrote the whole file for each, quadratic.
    /// </summary>
    public void MetaChanged() => _metaChanged = true;

    /// <summary>
    /// Buffers one record, writing the buffer first once it holds <see cref="WriteBytes"/> — except in the middle of a
    /// reserved group, and while writes fail (they are retried at each flush, not at every record) — or when it is full.
    /// No allocation while writes succeed.
    /// </summary>
    public void Append(in SpoolRecord record)
    {
        int used = _used;
        if (_group > 0) _group--;
        else if (used >= WriteBytes && _failingSince is null)
        {
            Flush();
            used = _used;
        }
        if (used > _buffer.Length - SpoolRecord.Size)
        {
            Flush();
            if (_used > _buffer.Length - SpoolRecord.Size) MergePerSeries(); // the file cannot take them: keep totals in memory
            used = _used;
        }
        // 1 kHz × every counter: a plain 32-byte store at an offset checked just above (MergePerSeries throws rather
        // than leave the buffer full), without a span and its second bounds check per record.
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), used), record);
        _used = used + SpoolRecord.Size;
        RecordsWritten++;
    }

    /// <summary>
    /// <see cref="Append(in SpoolRecord)"/> of each of <paramref name="records"/> in order, its
    /// <see cref="SpoolRecord.Series"/> an index into <paramref name="seriesIds"/> replaced by that id (the raw tick's
    /// records name their channel, each spool its own series of it: NodeSampler.OnReads), with the same writes at the
    /// same record boundaries (the buffer is written once it holds <see cref="WriteBytes"/>, before the record that
    /// finds it so), by runs of 32-byte stores: one source read's records on the raw tick, one call per spool.
    /// Record by record inside a reserved group, and when they might not fit in the buffer (a full state dir).
    /// </summary>
    public void Append(ReadOnlySpan<SpoolRecord> records, ReadOnlySpan<int> seriesIds)
    {
        int n = records.Length;
        if (_group > 0 || _used > _buffer.Length - n * SpoolRecord.Size)
        {
            foreach (var r in records)
            {
                var mapped = r;
                mapped.Series = seriesIds[r.Series];
                Append(in mapped);
            }
            return;
        }
        // Nothing below writes past the buffer: a flush only empties it, and all n fit after what it holds now.
        int i = 0;
        while (i < n)
        {
            int m = n - i;
            if (_failingSince is null)
            {
                if (_used >= WriteBytes)
                {
                    Flush(); // empties the buffer, or fails: then the rest goes in without a write, as Append's
                    continue;
                }
                m = Math.Min(m, (WriteBytes - _used + SpoolRecord.Size - 1) / SpoolRecord.Size); // up to the record that reaches WriteBytes
            }
            // 32-byte stores as Append's (a few records: no call to a block copy).
            ref byte at = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_buffer), _used);
            foreach (var r in records.Slice(i, m))
            {
                var mapped = r;
                mapped.Series = seriesIds[r.Series];
                Unsafe.WriteUnaligned(ref at, mapped);
                at = ref Unsafe.Add(ref at, SpoolRecord.Size);
            }
            _used += m * SpoolRecord.Size;
            i += m;
        }
        RecordsWritten += n;
    }

    /// <summary>
    /// The next <paramref name="records"/> records are one group that must reach the file whole or not at all: one
    /// period's split (node = Σ jobs + unattributed, NodeSampler's snapshot). A write in its middle would leave the
    /// node's energy without all its parts in the file, an interval that does not conserve if the sampler is killed
    /// before its next flush. What is buffered is written first when the group would take the buffer past
    /// <see cref="WriteBytes"/>.
    /// </summary>
    public void Reserve(int records)
    {
        if (_used > 0 && _used + records * SpoolRecord.Size > WriteBytes && _failingSince is null) Flush();
        _group = records;
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
        if (_detached || (_metaChanged && CheckDetached()))
        {
            _used = 0; // they would go to the unlinked file the epilog no longer reads
            return;
        }
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
            var now = DateTime.UtcNow;
            _writeFailures.Add($"state dir full from {since:yyyy-MM-ddTHH:mm:ssZ} to {now:yyyy-MM-ddTHH:mm:ssZ} (time resolution lost meanwhile, totals kept)");
            Core.Log.Info($"spool {_path}: writing again after {(now - since).TotalSeconds:0} s of failed writes; nothing lost");
            _failingSince = null;
        }
    }

    /// <summary>
    /// Merges the buffered records of each series into one (energy and interval added, the last end time, flags
    /// or-ed), in series order of first appearance: the buffer then holds at most one record per series, and every
    /// series' total is unchanged. Only while writes fail.
    /// </summary>
    private void MergePerSeries()
    {
        var records = MemoryMarshal.Cast<byte, SpoolRecord>(_buffer.AsSpan(0, _used));
        var slotOf = new Dictionary<int, int>();
        int n = 0;
        for (int i = 0; i < records.Length; i++)
        {
            var r = records[i];
            if (slotOf.TryGetValue(r.Series, out int k))
            {
                records[k].Add(in r);
            }
            else
            {
                slotOf[r.Series] = n;
                records[n++] = r;
            }
        }
        _used = n * SpoolRecord.Size;
        if (_used + SpoolRecord.Size > _buffer.Length)
            throw new IOException($"spool {_path}: more series than the buffer holds while the file cannot be written");
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
