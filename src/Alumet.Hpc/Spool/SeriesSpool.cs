using Alumet.Hpc.Core;

namespace Alumet.Hpc.Spool;

/// <summary>
/// A spool directory whose series are found or added by (consumer, channel): a restarted sampler that reopens a
/// spool keeps the ids its records already use, and a new series reaches meta.json before any record names it (both at
/// the writer's next flush).
/// </summary>
public sealed class SeriesSpool : IDisposable
{
    private readonly SpoolWriter _writer;
    private readonly Dictionary<(string Consumer, string Kind, string Id, string Interface), int> _ids = new();
    private readonly Dictionary<string, int[]> _byChannel = new(StringComparer.Ordinal); // consumer → series id per channel index, -1 unknown
    private string? _lastConsumer;
    private int[]? _lastIds;

    public string Directory { get; }
    public SpoolMeta Meta { get; }
    public long RecordsWritten => _writer.RecordsWritten;
    /// <summary><see cref="SpoolWriter.NextRecord"/>: where the next record appended goes in spool.bin.</summary>
    public long NextRecord => _writer.NextRecord;
    /// <summary><see cref="SpoolWriter.Failing"/>: writes are failing, what is buffered is not in the file.</summary>
    public bool Failing => _writer.Failing;
    /// <summary>What the job's row must say about this spool: records set aside at the reopen, episodes of failed writes (state dir full).</summary>
    public IEnumerable<string> Problems => _unreadable is null ? _writer.WriteFailures : _writer.WriteFailures.Prepend(_unreadable);
    private readonly string? _unreadable;

    /// <param name="meta">The metadata to write; when <paramref name="reopen"/> and the directory already has a
    /// meta.json, its series are kept (and appended to).</param>
    public SeriesSpool(string directory, SpoolMeta meta, bool reopen) : this(directory, Open(directory, meta, reopen)) { }

    private SeriesSpool(string directory, (SpoolMeta Meta, string? Unreadable, List<(int NodeSeries, SpoolRecord Sum, long Reads)> Unsplit, long SeriesFileBytes) opened)
    {
        Directory = directory;
        Meta = opened.Meta;
        _unreadable = opened.Unreadable;
        for (int i = 0; i < Meta.Series.Count; i++)
        {
            var s = Meta.Series[i];
            _ids.TryAdd((s.Consumer, s.ResourceKind, s.ResourceId, s.Interface), i);
        }
        _writer = new SpoolWriter(directory, Meta, seriesFileBytes: opened.SeriesFileBytes);
        if (opened.Unsplit.Count > 0) CloseUnsplit(opened.Unsplit);
    }

    /// <summary>
    /// The series a reopened spool keeps (its meta.json's and series file's; none when unreadable: its records set
    /// aside), its unsplit reads, and the length of the series file's complete lines when it is this spool's
    /// (-1 otherwise: a day of an earlier version listed every series in meta.json, and gets its series file whole).
    /// </summary>
    private static (SpoolMeta, string?, List<(int, SpoolRecord, long)>, long) Open(string directory, SpoolMeta meta, bool reopen)
    {
        meta.Series.Clear();
        string? unreadable = null;
        long seriesFileBytes = -1;
        if (reopen)
        {
            try
            {
                var existing = SpoolWriter.ReadMeta(directory, out long bytes);
                meta.Series = existing.Series;
                if (existing.SeriesFile is not null && existing.SeriesFile == meta.SeriesFile) seriesFileBytes = bytes;
            }
            catch (Exception e) when (e is IOException or System.Text.Json.JsonException or InvalidDataException)
            {
                unreadable = SetAside(directory, e);
            }
        }
        return (meta, unreadable, reopen && meta.Series.Count > 0 ? UnsplitNodeReads(directory, meta) : [], seriesFileBytes);
    }

    /// <summary>Where <see cref="SetAside"/> moves the records of a spool reopened without a readable meta.json (a second
    /// time: with a suffix, never over the first).</summary>
    public const string SetAsideRecordsFile = SpoolWriter.RecordsFile + ".unreadable";

    /// <summary>
    /// A spool reopened without a readable meta.json (damaged, emptied, removed): its records cannot be read, since only
    /// meta.json says which series each id is, and the series this spool adds from now on would reuse their ids (read
    /// as whatever got them). They are moved aside, never counted; the row says so. Null when there was nothing to set aside.
    /// </summary>
    private static string? SetAside(string directory, Exception why)
    {
        string records = Path.Combine(directory, SpoolWriter.RecordsFile);
        long count = File.Exists(records) ? new FileInfo(records).Length / SpoolRecord.Size : 0;
        if (count == 0) return null;
        string aside = Path.Combine(directory, SetAsideRecordsFile);
        string suffix = File.Exists(aside) ? "." + DateTime.UtcNow.Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture) : ""; // never over an earlier one
        aside += suffix;
        File.Move(records, aside);
        // A day's series file goes with them (what names their series, damaged or not): the spool starts a new one.
        string catalogue = Path.Combine(directory, SeriesCatalogue.FileName);
        if (File.Exists(catalogue)) File.Move(catalogue, catalogue + ".unreadable" + suffix);
        string problem = $"its meta.json could not be read when the sampler restarted ({ErrorText.Describe(why)}): the {count} record(s) from before the restart are not counted (set aside in {aside})";
        Log.Error($"spool {directory}: {problem}");
        return problem;
    }

    /// <summary>
    /// Closes, as <see cref="CloseUnsplit"/> does when a sampler reopens a spool, the unsplit node reads of a spool that
    /// no sampler will reopen: the epilog's own finalization of a job whose sampler died or hung (JobFinalizer). Writes
    /// nothing when there are none.
    /// </summary>
    public static void CloseUnsplitReads(string directory)
    {
        var meta = SpoolWriter.ReadMeta(directory, out long seriesFileBytes);
        var unsplit = UnsplitNodeReads(directory, meta);
        if (unsplit.Count == 0) return;
        using var spool = new SeriesSpool(directory, (meta, null, unsplit, seriesFileBytes)); // one read of meta.json, one scan of the records
    }


    /// <summary>
    /// The node's reads after the last split of their counter, summed per node series. A split always ends with the
    /// counter's unattributed record (NodeSampler's snapshot: node, jobs, then unattributed), so the reads that follow
    /// a counter's last unattributed record are the ones no split covers. Read from the end of spool.bin, until every
    /// counter's last split is found: a day's spool at raw storage grows by ~190 KB a second, and reopening it (a
    /// sampler's start, on its first prolog's path) read all of it.
    /// </summary>
    internal static List<(int NodeSeries, SpoolRecord Sum, long Reads)> UnsplitNodeReads(string directory, SpoolMeta meta)
    {
        // Per series: the node series of its counter (-1: none), and whether it is that counter's unattributed series.
        // The first node series of each counter by a dictionary: a day's spool lists thousands of series (one search
        // of the list per series was quadratic in them, at every reopen).
        int n = meta.Series.Count;
        var nodeOf = new int[n];
        var isSplit = new bool[n];
        var nodeSeries = new Dictionary<(string, string, string), int>();
        for (int i = 0; i < n; i++)
        {
            var s = meta.Series[i];
            if (s.Consumer == SpoolSeries.NodeConsumer) nodeSeries.TryAdd((s.ResourceKind, s.ResourceId, s.Interface), i);
        }
        for (int i = 0; i < n; i++)
        {
            var s = meta.Series[i];
            nodeOf[i] = nodeSeries.GetValueOrDefault((s.ResourceKind, s.ResourceId, s.Interface), -1);
            isSplit[i] = s.Consumer == SpoolSeries.UnattributedConsumer;
        }
        var sum = new SpoolRecord[n];
        var reads = new long[n];
        if (!File.Exists(Path.Combine(directory, NodeReadWindows.FileName))) // spool.bin alone is the spool
        {
            int open = 0; // counters whose last split is not found yet
            for (int i = 0; i < n; i++)
                if (nodeOf[i] == i) open++;
            var split = new bool[n];
            foreach (var chunk in SpoolReader.FileChunksFromTheEnd(Path.Combine(directory, SpoolWriter.RecordsFile), SpoolReader.ChunkRecords))
            {
                var records = chunk.Span;
                for (int k = records.Length - 1; k >= 0 && open > 0; k--)
                {
                    ref readonly var r = ref records[k];
                    if ((uint)r.Series >= (uint)n) continue;
                    int node = nodeOf[r.Series];
                    if (node < 0 || split[node]) continue;
                    if (isSplit[r.Series])
                    {
                        split[node] = true;
                        open--;
                    }
                    else if (r.Series == node)
                    {
                        sum[node].Add(in r);
                        reads[node]++;
                    }
                }
                if (open == 0) break;
            }
        }
        else foreach (var chunk in SpoolReader.ReadChunks(directory)) // its node reads merged in from the node's spool
            foreach (ref readonly var r in chunk.Span)
            {
                if ((uint)r.Series >= (uint)n || nodeOf[r.Series] < 0) continue;
                int node = nodeOf[r.Series];
                if (isSplit[r.Series])
                {
                    sum[node] = default;
                    reads[node] = 0;
                }
                else if (r.Series == node)
                {
                    sum[node].Add(in r);
                    reads[node]++;
                }
            }
        var unsplit = new List<(int, SpoolRecord, long)>();
        for (int i = 0; i < n; i++)
            if (reads[i] > 0) unsplit.Add((i, sum[i], reads[i]));
        return unsplit;
    }

    /// <summary>
    /// A spool whose sampler died (kill -9, crash) between two snapshots can end with node reads that no split closed:
    /// at raw storage every read is appended, and a flush between two snapshots (flush_interval_ms is not the period)
    /// writes them. Their energy was measured but never split: it is recorded here as unattributed, at the last read's
    /// time, so every interval of the file keeps node = Σ jobs + unattributed (README "Parquet schema") and nothing
    /// recorded is dropped. Not the job's: the split of that moment is unknown.
    /// </summary>
    private void CloseUnsplit(List<(int NodeSeries, SpoolRecord Sum, long Reads)> unsplit)
    {
        long reads = 0;
        foreach (var (node, sum, count) in unsplit)
        {
            var s = Meta.Series[node];
            var key = (SpoolSeries.UnattributedConsumer, s.ResourceKind, s.ResourceId, s.Interface);
            if (!_ids.TryGetValue(key, out int id))
            {
                id = Meta.Series.Count;
                Meta.Series.Add(new SpoolSeries
                {
                    Consumer = SpoolSeries.UnattributedConsumer, ResourceKind = s.ResourceKind, ResourceId = s.ResourceId, Interface = s.Interface,
                    JoulesPerUnit = s.JoulesPerUnit, Label = s.Label,
                });
                _ids[key] = id;
                _writer.SeriesAdded();
            }
            var rec = sum;
            rec.Series = id;
            _writer.Append(in rec);
            reads += count;
        }
        _writer.Flush();
        Log.Warn($"spool {Directory}: {reads} node read(s) after the last split of a sampler that stopped without closing its period: recorded as unattributed");
    }

    /// <summary>The series id of <paramref name="consumer"/>'s view of a channel, added when new (listed at the next flush, before the records: <see cref="SpoolWriter.SeriesAdded"/>).</summary>
    public int Series(string consumer, EnergyChannel ch)
    {
        var key = (consumer, ch.Resource.Kind.Wire(), ch.Resource.Id, ch.Interface.Wire());
        if (_ids.TryGetValue(key, out int id)) return id;
        id = Meta.Series.Count;
        Meta.Series.Add(new SpoolSeries
        {
            Consumer = consumer, ResourceKind = key.Item2, ResourceId = ch.Resource.Id, Interface = key.Item4,
            JoulesPerUnit = ch.JoulesPerUnit, Label = ch.Label,
        });
        _ids[key] = id;
        _writer.SeriesAdded();
        return id;
    }

    /// <summary>
    /// <see cref="Series(string, EnergyChannel)"/> for the channel at <paramref name="channel"/> in the node's measurement
    /// buffer, remembered per consumer and channel: the tick and snapshot paths look up one short string, not four.
    /// </summary>
    public int Series(string consumer, int channel, EnergyChannel ch)
    {
        // The raw-storage tick appends for one consumer ("node") only: the last consumer's ids (same string object)
        // answer it without hashing the name.
        var ids = ReferenceEquals(consumer, _lastConsumer) ? _lastIds : null;
        if (ids is null || ids.Length <= channel)
        {
            if (!_byChannel.TryGetValue(consumer, out ids) || ids.Length <= channel)
            {
                var grown = new int[Math.Max(channel + 1, ids?.Length ?? 0)];
                grown.AsSpan().Fill(-1);
                ids?.CopyTo(grown, 0);
                _byChannel[consumer] = ids = grown;
            }
            _lastConsumer = consumer;
            _lastIds = ids;
        }
        int id = ids[channel];
        if (id < 0) ids[channel] = id = Series(consumer, ch);
        return id;
    }

    /// <summary>The node series' ids by channel (-1 unknown): <see cref="AppendNodeReads"/>'s, the array <see cref="Series(string, int, EnergyChannel)"/> keeps for <see cref="SpoolSeries.NodeConsumer"/>.</summary>
    private int[] _nodeIds = [];

    /// <summary>
    /// Looks up, off the tick, the ids of the node series this spool already has (a reopened day's) for the channels
    /// <paramref name="all"/>: the raw tick's first reads then find them in <see cref="AppendNodeReads"/>'s array, where
    /// they made that array and looked each series up by name, allocating on the real-time thread. Adds no series.
    /// </summary>
    public void KnowNodeSeries(EnergyChannel[] all)
    {
        if (!_byChannel.TryGetValue(SpoolSeries.NodeConsumer, out var ids) || ids.Length < all.Length)
        {
            var grown = new int[all.Length];
            grown.AsSpan().Fill(-1);
            ids?.CopyTo(grown, 0);
            _byChannel[SpoolSeries.NodeConsumer] = ids = grown;
            if (_lastConsumer == SpoolSeries.NodeConsumer) _lastIds = ids;
        }
        for (int c = 0; c < all.Length; c++)
        {
            var ch = all[c];
            if (ids[c] < 0 && _ids.TryGetValue((SpoolSeries.NodeConsumer, ch.Resource.Kind.Wire(), ch.Resource.Id, ch.Interface.Wire()), out int id)) ids[c] = id;
        }
        _nodeIds = ids;
    }

    /// <summary>
    /// The raw tick: one source read's records, each naming in its <see cref="SpoolRecord.Series"/> its channel's index
    /// in the node's measurement buffer (<paramref name="all"/>), appended in order with this spool's id of that
    /// channel's node series (<see cref="SpoolWriter.Append(ReadOnlySpan{SpoolRecord}, ReadOnlySpan{int})"/>); a channel's
    /// first read adds its series.
    /// </summary>
    public void AppendNodeReads(ReadOnlySpan<SpoolRecord> records, EnergyChannel[] all)
    {
        var ids = _nodeIds;
        foreach (ref readonly var r in records)
        {
            int c = r.Series;
            if ((uint)c < (uint)ids.Length && ids[c] >= 0) continue;
            Series(SpoolSeries.NodeConsumer, c, all[c]);
            _nodeIds = ids = _byChannel[SpoolSeries.NodeConsumer];
        }
        _writer.Append(records, ids);
    }

    public void Append(int series, long wallNs, long intervalNs, ulong value, SpoolFlags flags)
    {
        var rec = new SpoolRecord { WallNs = wallNs, IntervalNs = intervalNs, Value = (long)value, Series = series, Flags = flags };
        _writer.Append(in rec);
    }

    /// <summary>Appends a record whose <see cref="SpoolRecord.Series"/> is already one of this spool's ids (the raw tick: one record built per read, its id set per spool from <see cref="Series(string, int, EnergyChannel)"/>).</summary>
    public void Append(in SpoolRecord record) => _writer.Append(in record);

    /// <summary>
    /// <see cref="Meta"/> was changed in place (an exec's relabel when it first shares the node): written at the next
    /// flush, before the records, like a new series. Never at once: a state dir that is full then would make the change
    /// throw out of whatever made it (a registration, half-way), and the records that need the new label are written
    /// by that same flush, after it, so a reader of the file (the recovery's SharedBefore, the finalizer) never sees
    /// one without the other.
    /// </summary>
    public void MetaChanged() => _writer.MetaChanged();

    /// <summary>Room for a group of <paramref name="records"/> that must reach the file whole (one period's split): <see cref="SpoolWriter.Reserve"/>.</summary>
    public void Reserve(int records) => _writer.Reserve(records);

    public void Flush() => _writer.Flush();

    /// <summary>Another process took spool.bin over (<see cref="SpoolWriter.CheckDetached"/>): nothing more is written.</summary>
    public bool CheckDetached() => _writer.CheckDetached();

    public bool Detached => _writer.Detached;

    public void Dispose() => _writer.Dispose();
}
