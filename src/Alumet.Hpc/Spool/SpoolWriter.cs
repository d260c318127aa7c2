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
    /// <summary>Device and inode of <see cref="_file"/>, taken once at open: a descriptor's file never changes (<see cref="CheckDetached"/>).</summary>
    private readonly (ulong Dev, ulong Ino)? _fileId;
    private readonly string _path;
    private readonly string _directory;
    private readonly SpoolMeta _meta;
    private bool _metaChanged;
    private readonly SafeFileHandle? _catalogue; // the series file of a spool that has one (SeriesCatalogue)
    private long _catalogueBytes;                // its length up to the last line written
    private int _catalogued;                     // the series it and meta.json list
    private readonly byte[] _buffer;
    private int _used;
    private int _group;  // records of a reserved group still to come: no write in its middle (Reserve)
    private long _offset;
    private DateTime? _failingSince;
    private readonly List<string> _writeFailures = new();
    // What a write met, said by the next Flush (Say): a write of Append's runs on the tick thread, which logs nothing.
    private IOException? _failureUnsaid;
    private readonly List<(DateTime Since, DateTime Until)> _episodesUnsaid = new(4);
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

    /// <param name="seriesFileBytes">For a spool with a <see cref="SpoolMeta.SeriesFile"/>: the length of its complete
    /// lines when they are the series <paramref name="meta"/> lists after meta.json's (<see cref="ReadMeta(string, out long)"/>);
    /// -1 when not known to be (a new spool, one whose meta.json listed every series): then written whole first.</param>
    public SpoolWriter(string directory, SpoolMeta meta, int bufferRecords = 64 * 1024, long seriesFileBytes = -1)
    {
        Directory.CreateDirectory(directory);
        _directory = directory;
        _meta = meta;
        if (meta.SeriesFile is not null)
        {
            string catalogue = Path.Combine(directory, CheckedSeriesFile(directory, meta));
            if (seriesFileBytes < 0)
            {
                // tmp + rename: meta.json, written next, is what makes readers take this file (an earlier version's
                // meta.json, still there if this fails, lists every series itself).
                lock (MetaGate)
                {
                    MetaBytes.ResetWrittenCount();
                    SeriesCatalogue.Write(meta.Series, 0, meta.Series.Count, MetaBytes, LineWriter());
                    Core.AtomicFile.WriteAllBytes(catalogue, MetaBytes.WrittenSpan);
                    seriesFileBytes = MetaBytes.WrittenCount;
                }
            }
            _catalogue = File.OpenHandle(catalogue, FileMode.Open, FileAccess.Write, FileShare.Read);
            if (RandomAccess.GetLength(_catalogue) > seriesFileBytes) RandomAccess.SetLength(_catalogue, seriesFileBytes); // a torn last line
            _catalogueBytes = seriesFileBytes;
            _catalogued = meta.Series.Count;
        }
        string path = Path.Combine(directory, RecordsFile);
        _path = path;
        try
        {
            WriteMeta(directory, meta);
            _file = File.OpenHandle(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        }
        catch
        {
            _catalogue?.Dispose();
            throw;
        }
        _fileId = Native.Libc.StatFd(_file)?.Id;
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
    private static Utf8JsonWriter? _lineJson;

    /// <summary>The writer of the series file's lines (not indented: one line each), under <see cref="MetaGate"/>.</summary>
    private static Utf8JsonWriter LineWriter() => _lineJson ??= new Utf8JsonWriter(MetaBytes);

    /// <summary>
    /// Replaces <paramref name="directory"/>'s meta.json whole (temporary file + rename): without the series when they
    /// are in its <see cref="SpoolMeta.SeriesFile"/>.
    /// </summary>
    public static void WriteMeta(string directory, SpoolMeta meta)
    {
        lock (MetaGate)
        {
            MetaBytes.ResetWrittenCount();
            if (_metaJson is null) _metaJson = new Utf8JsonWriter(MetaBytes, new JsonWriterOptions { Indented = true });
            else _metaJson.Reset(MetaBytes);
            JsonSerializer.Serialize(_metaJson, meta.SeriesFile is null ? meta : meta.WithoutSeries(), SpoolJsonContext.Default.SpoolMeta);
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

    /// <summary>The spool's metadata with every series: meta.json's, then its series file's (<see cref="SpoolMeta.SeriesFile"/>).</summary>
    public static SpoolMeta ReadMeta(string directory) => ReadMeta(directory, out _);

    /// <param name="seriesFileBytes">The length of the series file's complete lines; -1 when meta.json lists every series.</param>
    public static SpoolMeta ReadMeta(string directory, out long seriesFileBytes)
    {
        string path = Path.Combine(directory, MetaFile);
        var meta = JsonSerializer.Deserialize(File.ReadAllText(path), SpoolJsonContext.Default.SpoolMeta)
            ?? throw new InvalidDataException($"{path}: empty spool metadata");
        seriesFileBytes = -1;
        if (meta.SeriesFile is not null)
            meta.Series.AddRange(SeriesCatalogue.Read(Path.Combine(directory, CheckedSeriesFile(directory, meta)), out seriesFileBytes));
        return meta;
    }

    /// <summary>The series file meta.json names: only ours, never a path elsewhere.</summary>
    private static string CheckedSeriesFile(string directory, SpoolMeta meta) =>
        meta.SeriesFile == SeriesCatalogue.FileName ? meta.SeriesFile
        : throw new InvalidDataException($"{Path.Combine(directory, MetaFile)}: series_file must be {SeriesCatalogue.FileName}, not '{meta.SeriesFile}'");

    /// <summary>
    /// Whether another process gave spool.bin a new inode since this writer opened it (<see cref="DetachFromWriters"/>: the
    /// job's epilog took it over from a hung sampler, JobFinalizer). From then on this writer writes nothing more: neither
    /// records (into the unlinked old file) nor meta.json, which goes by path into the directory the epilog finalized (a
    /// kept state dir keeps it). One stat of the path (the held file's identity is taken at open): before each rewrite of
    /// meta.json, and when the node sampler's periodic flush asks (<see cref="CheckDetached"/>), never per read. A spool.bin that is gone (the state dir removed
    /// after the finalization) is not a detach: the write fails as before.
    /// </summary>
    public bool Detached => _detached;

    /// <summary>Compares the file this writer holds with spool.bin's path (<see cref="Detached"/>); true once detached.</summary>
    public bool CheckDetached()
    {
        if (!_detached && _fileId is { } held && Native.Libc.StatPath(_path)?.Id is { } named && held != named)
        {
            _detached = true;
            Core.Log.Warn($"spool {_path}: another process took it over (the job's epilog finalized it while this sampler was not answering); nothing more is written there");
        }
        return _detached;
    }

    /// <summary>
    /// The metadata changed (a label changed; a series added: <see cref="SeriesAdded"/>): meta.json is rewritten at the next <see cref="Flush"/>, before the
    /// records, so a record in the file never names a series meta.json does not list. Once per flush, not once per
    /// series: a period that adds many series (16 jobs registered at once) rewrote the whole file for each, quadratic.
    /// </summary>
    public void MetaChanged() => _metaChanged = true;

    /// <summary>
    /// A series was added to the metadata: listed at the next <see cref="Flush"/>, before the records, as
    /// <see cref="MetaChanged"/> (a spool with a series file appends its line there instead of rewriting meta.json).
    /// </summary>
    public void SeriesAdded()
    {
        if (_catalogue is null) _metaChanged = true;
    }

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
            Write();
            used = _used;
        }
        if (used > _buffer.Length - SpoolRecord.Size)
        {
            Write();
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
                    Write(); // empties the buffer, or fails: then the rest goes in without a write, as Append's
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
        Write();
        Say();
    }

    /// <summary>
    /// <see cref="Flush"/>'s writes, without a word: <see cref="Append(in SpoolRecord)"/> runs it on the tick thread,
    /// which must not allocate there (NodeSamplerTests.TickReadsAllocateNothing; at SCHED_FIFO a GC it triggered would
    /// wait for the threads it preempts) nor write the log: what it met is kept for the next <see cref="Flush"/> to say.
    /// Series first (the series file's new lines, or meta.json), then the records that name them.
    /// </summary>
    private void Write()
    {
        bool seriesUnlisted = _catalogue is not null && _meta.Series.Count > _catalogued;
        if (_used == 0 && !_metaChanged && !seriesUnlisted) return;
        if (_detached || (_metaChanged && CheckDetached()))
        {
            _used = 0; // they would go to the unlinked file the epilog no longer reads
            return;
        }
        try
        {
            if (seriesUnlisted) AppendSeries();
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
                _failureUnsaid = e;
            }
            return;
        }
        _offset += _used;
        _used = 0;
        if (_failingSince is { } since)
        {
            // Records merged while failing can be shorter than a prefix a failed write left: cut what lies beyond.
            if (RandomAccess.GetLength(_file) > _offset) RandomAccess.SetLength(_file, _offset);
            _episodesUnsaid.Add((since, DateTime.UtcNow));
            _failingSince = null;
        }
    }

    /// <summary>The lines of the series added since the last, appended where the file's last complete line ends.</summary>
    private void AppendSeries()
    {
        int count = _meta.Series.Count;
        lock (MetaGate)
        {
            MetaBytes.ResetWrittenCount();
            SeriesCatalogue.Write(_meta.Series, _catalogued, count, MetaBytes, LineWriter());
            // At that offset, not O_APPEND: a write cut short by an error is written again over its own prefix.
            RandomAccess.Write(_catalogue!, MetaBytes.WrittenSpan, _catalogueBytes);
            _catalogueBytes += MetaBytes.WrittenCount;
        }
        _catalogued = count;
    }

    /// <summary>Logs what the writes met since the last call: a failure once when it starts, once when it ends.</summary>
    private void Say()
    {
        if (_failureUnsaid is { } e)
        {
            _failureUnsaid = null;
            Core.Log.Error($"spool {_path}: write failed ({e.Message}); records are kept in memory (merged per series when the buffer fills: totals are kept) and retried every flush");
        }
        foreach (var (since, until) in _episodesUnsaid)
        {
            _writeFailures.Add($"state dir full from {since:yyyy-MM-ddTHH:mm:ssZ} to {until:yyyy-MM-ddTHH:mm:ssZ} (time resolution lost meanwhile, totals kept)");
            Core.Log.Info($"spool {_path}: writing again after {(until - since).TotalSeconds:0} s of failed writes; nothing lost");
        }
        _episodesUnsaid.Clear();
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
        _catalogue?.Dispose();
    }

    /// <summary>Records that could not be written by <see cref="Dispose"/> (the state dir still full).</summary>
    public long UnwrittenRecords { get; private set; }
}
