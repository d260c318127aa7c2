using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Spool;

/// <summary>
/// The node's raw reads that belong in a job's file, stored once. Issue 8 item 5 (README "Who sees what"): a job alone
/// on its node, or exclusive, gets the node's series in its own file, at raw storage every read. The tick appends each
/// read to the node's day spool only (<see cref="NodeSpool"/>; it used to append it to the job's spool as well, which
/// was most of the 1 kHz OS-noise excess, README "Performance"); the job's state dir keeps in <c>node-windows</c> where
/// in the node's spool the windows of reads that are its begin and end, one event a line:
/// <code>
/// open DAY POS       a window opens at record POS of DAY's spool ("-" for DAY: no day open yet; it starts where the
///                    sampler's first day starts, given by the next roll)
/// roll END DAY POS   the sampler closed its day at record END (-1: it had none) and went on in DAY at record POS
/// close POS          the window ends at record POS of its current day
/// </code>
/// POS is a record's index in that day's spool.bin (<see cref="SpoolWriter.NextRecord"/>), written under the spool lock
/// the tick takes, so a window holds exactly the reads the tick appended while the job got them. A window a killed
/// sampler left open ends where that sampler stopped writing: the next sampler closes it when it recovers the job
/// (<see cref="Cut"/>), else it runs to the end of the day's file (the epilog's own finalization, no sampler since).
/// Every reader of the job's spool (<see cref="SpoolReader.ReadChunks"/>) sees the node-series records of those windows
/// merged into spool.bin by time, as the tick interleaved them; the finalization copies them in once
/// (<see cref="CopyIn"/>), so the kept state dir, the Parquet file, the row and every check are made from the records
/// they were made from before.
/// </summary>
public sealed class NodeReadWindows
{
    public const string FileName = "node-windows";
    /// <summary>What <see cref="FileName"/> becomes once its reads are copied into spool.bin (kept: says they are).</summary>
    public const string DoneFileName = FileName + ".done";
    /// <summary>The merged spool, renamed over spool.bin once <see cref="FileName"/> is renamed to <see cref="DoneFileName"/>.</summary>
    public const string MergedFile = SpoolWriter.RecordsFile + ".merged";

    private readonly List<string> _events = new();
    private long _readsBefore; // node records in the windows closed by this process (RecordsWritten)
    private long _readsAtOpen;

    /// <summary>A window is open: the job gets the node's raw reads now.</summary>
    public bool IsOpen { get; private set; }
    /// <summary>The day the open window is in (null: open before any day, or closed).</summary>
    public string? Day { get; private set; }
    /// <summary>The file lags what this object knows (a write failed): rewritten at the next flush.</summary>
    public bool Dirty { get; private set; }

    private static string N(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <param name="at">The node spool's open day and next record (<see cref="NodeSpool.Position"/>).</param>
    /// <param name="reads">The node's raw records appended so far by this process (for <see cref="Reads"/>).</param>
    public void Open((string? Day, long Record) at, long reads)
    {
        if (IsOpen) return;
        _events.Add(at.Day is null ? "open - 0" : $"open {at.Day} {N(at.Record)}");
        (IsOpen, Day, _readsAtOpen, Dirty) = (true, at.Day, reads, true);
    }

    public void Roll(long previousEnd, string day, long start)
    {
        if (!IsOpen) return;
        _events.Add($"roll {N(previousEnd)} {day} {N(start)}");
        (Day, Dirty) = (day, true);
    }

    public void Close(long record, long reads)
    {
        if (!IsOpen) return;
        _events.Add($"close {N(record)}");
        _readsBefore += reads - _readsAtOpen;
        (IsOpen, Day, Dirty) = (false, null, true);
    }

    /// <summary>Closes a window a killed sampler left open, at <paramref name="end"/>: where that sampler stopped writing its day.</summary>
    public void Cut(long end)
    {
        if (!IsOpen) return;
        _events.Add($"close {N(end)}");
        (IsOpen, Day, Dirty) = (false, null, true);
    }

    /// <summary>Node records of this job's windows (of this process), given the node's count now.</summary>
    public long Reads(long reads) => _readsBefore + (IsOpen ? reads - _readsAtOpen : 0);

    /// <summary>Replaces the file (temporary file + rename: a reader sees one version whole); false when it failed (kept <see cref="Dirty"/>).</summary>
    public bool TryWrite(string jobDir, out string? error)
    {
        error = null;
        var text = new StringBuilder();
        foreach (string e in _events) text.Append(e).Append('\n');
        try
        {
            AtomicFile.WriteAllText(Path.Combine(jobDir, FileName), text.ToString());
            Dirty = false;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e.Message;
            Dirty = true;
            return false;
        }
    }

    /// <summary>
    /// A recovered job's windows (a restarted sampler): the events its file holds, open when the killed sampler left a
    /// window open. A copy into spool.bin that a finalizer killed half-way committed is finished first (<see cref="CopyIn"/>).
    /// </summary>
    public static NodeReadWindows Load(string jobDir)
    {
        RollForward(jobDir);
        var w = new NodeReadWindows();
        if (Lines(jobDir) is not { } lines) return w;
        foreach (string line in lines)
        {
            var f = line.Split(' ');
            w._events.Add(line);
            switch (f[0])
            {
                case "open": (w.IsOpen, w.Day) = (true, f.Length > 1 && f[1] != "-" ? f[1] : null); break;
                case "roll" when w.IsOpen && f.Length > 2: w.Day = f[2]; break;
                case "close": (w.IsOpen, w.Day) = (false, null); break;
            }
        }
        return w;
    }

    /// <summary>The lines of a job's windows file (<see cref="FileName"/>), null when it has none: the one place it is read.</summary>
    private static string[]? Lines(string jobDir)
    {
        try { return File.ReadAllLines(Path.Combine(jobDir, FileName)); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
    }

    /// <summary>
    /// The days of the node's spool a job's windows still name (<see cref="FileName"/>; a <see cref="DoneFileName"/> has
    /// copied its reads): every field of every line that reads as a day, so a damaged line keeps more days, never fewer
    /// (JobStateCleanup removes no day named here). <see cref="Segments"/> reads only such days. Empty without a windows
    /// file; throws when it cannot be read (which days it names is not known).
    /// </summary>
    public static HashSet<string> DaysNamedIn(string jobDir)
    {
        var days = new HashSet<string>(StringComparer.Ordinal);
        foreach (string line in Lines(jobDir) ?? [])
            foreach (string field in line.Split(' '))
                if (NodeSpool.IsDay(field, out _)) days.Add(field);
        return days;
    }

    /// <summary>The records of a day's spool.bin (0 when it has none): where its last writer stopped.</summary>
    public static long RecordsIn(string dayDir)
    {
        var file = new FileInfo(Path.Combine(dayDir, SpoolWriter.RecordsFile));
        return file.Exists ? file.Length / SpoolRecord.Size : 0;
    }

    /// <summary>A window's part in one day: records [Start, End) of its spool.bin, End -1 for the end of the file.</summary>
    internal readonly record struct Segment(string Day, long Start, long End);

    internal static List<Segment> Segments(IEnumerable<string> lines)
    {
        var segments = new List<Segment>();
        bool open = false;
        string? day = null;
        long start = 0;
        foreach (string line in lines)
        {
            var f = line.Split(' ');
            switch (f[0])
            {
                case "open" when f.Length == 3:
                    if (open && day is not null) segments.Add(new(day, start, -1)); // a killed sampler's window no one cut
                    open = true;
                    day = f[1] == "-" ? null : DayField(f[1]);
                    start = Long(f[2]);
                    break;
                case "roll" when f.Length == 4 && open:
                    if (day is not null) segments.Add(new(day, start, Long(f[1])));
                    day = DayField(f[2]);
                    start = Long(f[3]);
                    break;
                case "close" when f.Length == 2 && open:
                    if (day is not null) segments.Add(new(day, start, Long(f[1])));
                    open = false;
                    day = null;
                    break;
            }
        }
        if (open && day is not null) segments.Add(new(day, start, -1));
        return segments;
    }

    private static string DayField(string s) => NodeSpool.IsDay(s, out _) ? s
        : throw new IOException($"{FileName}: '{s}' is not a day (the file is damaged: the job's node reads cannot be told apart)");

    private static long Long(string s) =>
        long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? v
        : throw new IOException($"{FileName}: '{s}' is not a record index (the file is damaged: the job's node reads cannot be told apart)");

    /// <summary>The node's spool root of a job's state dir (<c>&lt;state_dir&gt;/&lt;scheduler&gt;/&lt;job&gt;</c> → <c>&lt;state_dir&gt;/node</c>).</summary>
    private static string NodeRoot(string jobDir) =>
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(jobDir))!)!, NodeSpool.Directory);

    /// <summary>
    /// The node-series records of the job's windows, in node-spool order, each with the job's id of its series (those
    /// <paramref name="jobMeta"/> lacks are left out: <see cref="CopyIn"/> adds them first). Null when the job has no
    /// windows file.
    /// </summary>
    internal static IEnumerable<ReadOnlyMemory<SpoolRecord>>? ReadsOf(string jobDir, SpoolMeta? jobMeta, int chunkRecords)
    {
        return Lines(jobDir) is { } lines ? Reads(jobDir, lines, jobMeta, chunkRecords) : null;
    }

    private static IEnumerable<ReadOnlyMemory<SpoolRecord>> Reads(string jobDir, string[] lines, SpoolMeta? jobMeta, int chunkRecords)
    {
        jobMeta ??= SpoolWriter.ReadMeta(jobDir);
        string root = NodeRoot(jobDir);
        var output = new SpoolRecord[chunkRecords];
        foreach (var seg in Segments(lines))
        {
            string dayDir = Path.Combine(root, seg.Day);
            if (!File.Exists(Path.Combine(dayDir, SpoolWriter.MetaFile))) continue; // said by CopyIn
            int[] ids = JobIds(SpoolWriter.ReadMeta(dayDir), jobMeta, add: false);
            foreach (var chunk in SpoolReader.FileChunks(Path.Combine(dayDir, SpoolWriter.RecordsFile), seg.Start, seg.End, chunkRecords))
            {
                int n = Filter(chunk.Span, ids, output);
                if (n > 0) yield return new ReadOnlyMemory<SpoolRecord>(output, 0, n);
            }
        }
    }

    private static int Filter(ReadOnlySpan<SpoolRecord> records, int[] ids, SpoolRecord[] output)
    {
        int n = 0;
        foreach (ref readonly var r in records)
        {
            if ((uint)r.Series >= (uint)ids.Length || ids[r.Series] < 0) continue;
            output[n] = r;
            output[n++].Series = ids[r.Series];
        }
        return n;
    }

    /// <summary>Per series of a node day's spool: the job's id of the same node series, -1 for the other consumers (and,
    /// unless <paramref name="add"/>, node series the job's meta lacks).</summary>
    private static int[] JobIds(SpoolMeta nodeMeta, SpoolMeta jobMeta, bool add)
    {
        var ids = new int[nodeMeta.Series.Count];
        for (int i = 0; i < ids.Length; i++)
        {
            var s = nodeMeta.Series[i];
            ids[i] = -1;
            if (s.Consumer != SpoolSeries.NodeConsumer) continue;
            ids[i] = jobMeta.Series.FindIndex(x => x.Consumer == SpoolSeries.NodeConsumer && x.ResourceKind == s.ResourceKind && x.ResourceId == s.ResourceId && x.Interface == s.Interface);
            if (ids[i] >= 0 || !add) continue;
            ids[i] = jobMeta.Series.Count;
            jobMeta.Series.Add(new SpoolSeries
            {
                Consumer = SpoolSeries.NodeConsumer, ResourceKind = s.ResourceKind, ResourceId = s.ResourceId, Interface = s.Interface,
                JoulesPerUnit = s.JoulesPerUnit, Label = s.Label,
            });
        }
        return ids;
    }

    /// <summary>
    /// Copies the node reads of the job's windows into its spool.bin, merged by time as the tick interleaved them, once:
    /// the merge is written beside it (<see cref="MergedFile"/>, synced), <see cref="FileName"/> is renamed to
    /// <see cref="DoneFileName"/> (the commit: from then on no reader and no later call takes the reads from the node's
    /// spool again), then the merge is renamed over spool.bin; a call after a crash between the two renames finishes the
    /// second (<see cref="RollForward"/>). Run by every finalization under the job's lock (JobFinalizer), before anything
    /// reads the spool. Returns what the job's file misses (a day of the node's spool not found), for its row.
    /// </summary>
    public static List<string> CopyIn(string jobDir)
    {
        // Its four chunk buffers (the job's records, the day's, the filtered reads, the merge) are small: with
        // SpoolReader.ChunkRecords each was 2 MB on the large-object heap, garbage that the summary's and the Parquet
        // writer's buffers came on top of until a full collection (the finalize-job child's peak RSS, 34 -> 42 MB for
        // 11 s of 1 kHz reads: docs/performance-log.md). Copying is one write per chunk either way.
        var problems = new List<string>();
        string windows = Path.Combine(jobDir, FileName);
        string merged = Path.Combine(jobDir, MergedFile);
        if (Lines(jobDir) is not { } lines)
        {
            RollForward(jobDir);
            return problems;
        }
        File.Delete(merged); // a finalizer killed before its commit: made again whole
        var meta = SpoolWriter.ReadMeta(jobDir);
        string root = NodeRoot(jobDir);
        int seriesBefore = meta.Series.Count;
        foreach (string day in Segments(lines).Select(s => s.Day).Distinct())
        {
            string dayDir = Path.Combine(root, day);
            if (File.Exists(Path.Combine(dayDir, SpoolWriter.MetaFile))) JobIds(SpoolWriter.ReadMeta(dayDir), meta, add: true);
            else problems.Add($"the node's raw reads of {day} were not found in {dayDir}: the file's node rows miss that day");
        }
        // Node series the job's meta.json lacked (its sampler killed before the flush that would have written them)
        // are listed before any record names them.
        if (meta.Series.Count > seriesBefore) SpoolWriter.WriteMeta(jobDir, meta);
        var own = SpoolReader.FileChunks(Path.Combine(jobDir, SpoolWriter.RecordsFile), 0, -1, SpoolReader.SmallChunkRecords);
        using (var fs = new FileStream(merged, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
        {
            foreach (var chunk in SpoolReader.Merge(own, Reads(jobDir, lines, meta, SpoolReader.SmallChunkRecords), SpoolReader.SmallChunkRecords))
                fs.Write(MemoryMarshal.AsBytes(chunk.Span));
            fs.Flush(flushToDisk: true);
        }
        File.Move(windows, Path.Combine(jobDir, DoneFileName), overwrite: true);
        AtomicFile.SyncDirectory(jobDir);
        RollForward(jobDir);
        return problems;
    }

    /// <summary>A committed copy (<see cref="DoneFileName"/> there, <see cref="FileName"/> not) whose merge is not yet spool.bin: renamed over it.</summary>
    private static void RollForward(string jobDir)
    {
        string merged = Path.Combine(jobDir, MergedFile);
        if (!File.Exists(merged)) return;
        if (File.Exists(Path.Combine(jobDir, FileName)) || !File.Exists(Path.Combine(jobDir, DoneFileName)))
        {
            File.Delete(merged); // not committed: the windows are still read from the node's spool
            return;
        }
        File.Move(merged, Path.Combine(jobDir, SpoolWriter.RecordsFile), overwrite: true);
        AtomicFile.SyncDirectory(jobDir);
    }
}
