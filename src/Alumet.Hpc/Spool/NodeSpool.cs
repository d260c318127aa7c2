using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Parquet;

namespace Alumet.Hpc.Spool;

/// <summary>
/// The node's own series (node, every job's share, unattributed), one spool per UTC day under
/// <c>&lt;state_dir&gt;/node/&lt;yyyy-MM-dd&gt;</c>, exported when the day ends or the sampler exits to
/// <c>&lt;data_dir&gt;/&lt;cluster&gt;/node/&lt;node&gt;/&lt;node&gt;.&lt;yyyy-MM-dd&gt;.parquet</c>. Both directories are root-only
/// (0700, file 0400): at raw rate these are the node-level readings that leak what co-tenants do (CVE-2020-8694).
/// A closed day is handed to <c>dayClosed</c>, which exports it (<see cref="Export"/>) off the sampler's locks: the node
/// daemon in a <c>finalize-job</c> child, like a job's file (a day of rows took the tick's lock for the whole export).
/// </summary>
public sealed class NodeSpool
{
    public const string Directory = "node";

    private readonly AlumetConfig _cfg;
    private readonly SourceSet _sources;
    private string _node;
    private string _cluster;
    private SeriesSpool? _spool;
    private FinalizationLock? _dayLock; // the open day's directory: JobStateCleanup removes no day a sampler has open
    private string _day = "";
    private long _dayNumber = -1; // days since the epoch of _day: the per-period check formats no string

    private readonly Action<string> _dayClosed;
    private readonly Dictionary<string, long> _sessionStarts = new(StringComparer.Ordinal); // day → where this process began writing it

    /// <summary>
    /// Told each day's spool this process opens, after it opened it: the previous day's end (its next record index, -1
    /// when this process had none open) and the new day with the record index this process starts at in it. The node
    /// sampler moves the open windows of the jobs that get the node's raw reads there (<see cref="NodeReadWindows"/>).
    /// Called under the caller's locks, like every method here.
    /// </summary>
    public Action<long, string, long>? Opened { get; set; }

    /// <param name="dayClosed">Given each closed day's spool directory, to export (called under the caller's locks: it must not wait).</param>
    public NodeSpool(AlumetConfig cfg, SourceSet sources, Action<string> dayClosed)
    {
        _cfg = cfg;
        _sources = sources;
        _dayClosed = dayClosed;
        _node = Environment.MachineName;
        _cluster = cfg.Cluster.Name.Length > 0 ? cfg.Cluster.Name : "local";
    }

    /// <summary>The node and cluster as the scheduler names them (the first job's), when the config does not name the cluster.</summary>
    /// <summary>The node this sampler serves (named by the first registration's hook), "" before.</summary>
    public string Node => _node;

    public void NameFrom(Jobs.JobIdentity job)
    {
        _node = job.Node;
        if (_cfg.Cluster.Name.Length == 0) _cluster = job.Cluster;
        if (_spool is null) return;
        // The open day's meta.json names the file it is exported to (Export): renamed with the node.
        _spool.Meta.Node = _node;
        _spool.Meta.Cluster = _cluster;
        _spool.MetaChanged();
    }

    public static string Root(AlumetConfig cfg) => Path.Combine(cfg.Paths.StateDir, Directory);

    /// <summary>A day's directory name: its UTC date.</summary>
    public const string DayFormat = "yyyy-MM-dd";

    /// <summary>Whether <paramref name="name"/> names a day's directory (<see cref="DayFormat"/>).</summary>
    public static bool IsDay(string name, out DateOnly day) =>
        DateOnly.TryParseExact(name, DayFormat, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.None, out day);

    public string? CurrentDirectory => _spool?.Directory;

    /// <summary>The open day's spool; null before the first day opens.</summary>
    public SeriesSpool? Current => _spool;

    /// <summary>Opens the spool of the day of <paramref name="wallNs"/> (exporting the previous day's).</summary>
    public void Roll(long wallNs)
    {
        long dayNumber = Math.DivRem(wallNs, 86_400_000_000_000L, out long rem) - (rem < 0 ? 1 : 0);
        if (dayNumber == _dayNumber && _spool is not null) return;
        string day = Clock.FromWallNs(wallNs).ToString(DayFormat, System.Globalization.CultureInfo.InvariantCulture);
        if (day == _day && _spool is not null) { _dayNumber = dayNumber; return; }
        long previousEnd = _spool?.NextRecord ?? -1;
        string root = Root(_cfg);
        RootOnlyDirectory(root);
        string dir = Path.Combine(root, day);
        var nextLock = LockDay(dir);
        var meta = new SpoolMeta
        {
            ToolVersion = ToolInfo.Version, Scheduler = Directory, Cluster = _cluster, JobId = Directory, User = "root", Uid = 0,
            Node = _node, StartWallNs = wallNs, StoragePeriodMs = _cfg.Sampler.StoragePeriodMs, AttributionPeriodMs = _cfg.Sampler.AttributionPeriodMs,
            AttributionMode = "cgroup-cpu-time", Perimeter = _sources.Perimeter, EstimateModel = _sources.EstimateModel,
            SeriesFile = SeriesCatalogue.FileName, // every job adds series to the day: appended, never rewritten (SeriesCatalogue)
        };
        foreach (var slot in _sources.Slots) meta.SourceHz[slot.Source.Name] = slot.Hz;
        // The new day is opened before the old one closes: when it cannot be (a full state dir), reads go on into the
        // old day, not nowhere, and the next period's roll tries again; a tick never finds no day open and opens one
        // itself (file work and allocations on the real-time thread, and its failure would end the sampler).
        SeriesSpool next;
        try { next = new SeriesSpool(dir, meta, reopen: true); }
        catch
        {
            nextLock?.Dispose(); // the old day stays open, and locked
            throw;
        }
        Close(); // releases the old day's lock
        (_spool, _dayLock) = (next, nextLock);
        _day = day;
        _dayNumber = dayNumber;
        long start = _spool.NextRecord;
        _sessionStarts.TryAdd(day, start);
        Opened?.Invoke(previousEnd, day, start);
    }

    /// <summary>The open day and the index its next record gets; (null, 0) when no day is open yet.</summary>
    public (string? Day, long Record) Position => _spool is null ? (null, 0) : (_day, _spool.NextRecord);

    /// <summary>The open day's writes are failing (a full state dir): its buffered reads are not in the file yet.</summary>
    public bool Failing => _spool?.Failing == true;

    /// <summary>
    /// Where the node sampler(s) before this process stopped writing <paramref name="day"/>: the record this process
    /// started at in it, else (this process never opened it) its whole file. A window of node reads that a killed
    /// sampler left open ends there (<see cref="NodeReadWindows.Cut"/>).
    /// </summary>
    public long EndBeforeThisProcess(string day) =>
        _sessionStarts.TryGetValue(day, out long start) ? start : NodeReadWindows.RecordsIn(Path.Combine(Root(_cfg), day));

    /// <param name="channel">The channel's index in the node's measurement buffer.</param>
    public void Append(string consumer, int channel, EnergyChannel ch, long wallNs, long intervalNs, ulong value, Spool.SpoolFlags flags)
    {
        if (_spool is null) Roll(wallNs);
        _spool!.Append(_spool.Series(consumer, channel, ch), wallNs, intervalNs, value, flags);
    }

    /// <summary>Room in the day's spool for one period's split, written whole (<see cref="SpoolWriter.Reserve"/>).</summary>
    public void Reserve(int records) => _spool?.Reserve(records);

    /// <summary>
    /// The open spool (the day's; opened for <paramref name="wallNs"/>'s day when none is): the raw tick builds one record
    /// per read and appends it here with this spool's series id. Another object after a <see cref="Roll"/> to a new day.
    /// </summary>
    public SeriesSpool Open(long wallNs)
    {
        if (_spool is null) Roll(wallNs);
        return _spool!;
    }

    public void Flush() => _spool?.Flush();

    /// <summary>Closes the day's spool and hands it to be exported (the whole day so far).</summary>
    public void Close()
    {
        if (_spool is null) return;
        string dir = _spool.Directory;
        _spool.Dispose();
        _spool = null;
        _dayLock?.Dispose();
        _dayLock = null;
        _dayClosed(dir);
    }

    /// <summary>
    /// Makes the day's directory (root-only) and locks it while it is open: JobStateCleanup removes a day only under this
    /// lock, so never one this sampler writes (README, "Data: spool, Parquet, database": a sampler restarted across a UTC
    /// midnight reopens a day whose export by the sampler before it may finish later). A pruner holds it for a few ms;
    /// one that renamed the day away meanwhile leaves it to be made again. Null, said in the log, when it stays held.
    /// </summary>
    private static FinalizationLock? LockDay(string dir)
    {
        for (int attempt = 0; attempt < 2; attempt++)
        {
            RootOnlyDirectory(dir);
            if (FinalizationLock.AcquireDirectory(dir, TimeSpan.FromSeconds(2), out bool busy) is { } held) return held;
            if (busy) break;
        }
        Log.Warn($"node spool {dir}: its directory could not be locked; a job's finalization could remove the day while it is open");
        return null;
    }

    /// <summary>
    /// Exports a closed day's spool to the node's root-only Parquet file, named from its meta.json (cluster, node) and
    /// its directory (the day); the whole file is replaced, so a day reopened by a restarted sampler is exported whole.
    /// Once the file is durable, <see cref="ExportedFile"/> records the records of spool.bin it holds: the next
    /// finalization removes the day's spool when that is still all of it (JobStateCleanup). Nothing to do when it is.
    /// <paramref name="failedAttempts"/>: the lines of the day's <see cref="ExportFailedFile"/>, read and removed here,
    /// under the day's lock: once it is released, another job's finalization may remove the exported day, the mark with
    /// it, before the caller could read it (its failed attempts were then said nowhere).
    /// </summary>
    public static string Export(AlumetConfig cfg, string dir, out int failedAttempts)
    {
        // The day's lock: the cleanup of exported days (JobStateCleanup) never removes a day while it is read here, and
        // two exports of a day record what they wrote one after the other.
        using var claim = FinalizationLock.Acquire(dir, TimeSpan.FromSeconds(60), out bool busy)
            ?? throw new IOException(busy ? $"another process held {dir} for 60 s; export it again later" : $"the node's day spool {dir} does not exist");
        var meta = SpoolWriter.ReadMeta(dir);
        string target = Path.GetFullPath(ParquetPath(cfg, meta.Cluster, meta.Node, Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))));
        if (ExportedTo(dir) == target)
        {
            failedAttempts = TakeFailedAttempts(dir);
            return target;
        }
        // Counted before the file is read: a sampler that reopened the day appends after them (the file holds at least these).
        long records = NodeReadWindows.RecordsIn(dir);
        // A spool that holds fewer records than the day's file has rows is not that file's spool grown: the day was
        // exported and pruned, then opened again (a wall clock stepped back past PruneAfter). Its reads go to a file of
        // their own beside the day's, which is never replaced by a part of itself.
        // An export of such a spool after it grew again replaces the part it wrote last time (its own file).
        if (ExportedRecord(dir)?.File is { } last && last.StartsWith(target[..^".parquet".Length] + ".part", StringComparison.Ordinal)) target = last;
        else if (RowsIn(target) is long rows && rows > records) target = PartPath(target);
        RootOnlyDirectory(Path.GetDirectoryName(Path.GetDirectoryName(target)!)!);
        RootOnlyDirectory(Path.GetDirectoryName(target)!);
        string tmp = target + $".tmp{Environment.ProcessId}";
        File.Delete(tmp);
        ParquetExporter.ExportAsync(dir, tmp, new ParquetExportOptions(FileMode: UnixFileMode.UserRead)).GetAwaiter().GetResult();
        File.Move(tmp, target, overwrite: true);
        Core.AtomicFile.SyncDirectory(Path.GetDirectoryName(target)!);
        Core.AtomicFile.WriteDurably(Path.Combine(dir, ExportedFile),
            System.Text.Encoding.UTF8.GetBytes($"{records.ToString(System.Globalization.CultureInfo.InvariantCulture)} {target}\n"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        failedAttempts = TakeFailedAttempts(dir);
        return target;
    }

    /// <summary>Written in a day's directory at each failed export of it, one line each ("TIME ERROR"), by the node
    /// sampler (NodeSampler.ExportSaidOnce): the first is logged, the next ones are not, until an export works again: it
    /// reads and removes the file under the day's lock and its line says how many failed (<see cref="Export"/>): said
    /// once per episode.</summary>
    public const string ExportFailedFile = "export-failed";

    /// <summary>The failed attempts <see cref="ExportFailedFile"/> counts (0 without one), the file removed; under the day's lock.</summary>
    private static int TakeFailedAttempts(string dir)
    {
        string mark = Path.Combine(dir, ExportFailedFile);
        int failed;
        try { failed = File.ReadAllLines(mark).Length; }
        catch (FileNotFoundException) { return 0; }
        File.Delete(mark);
        return failed;
    }

    /// <summary>Written in a day's directory by <see cref="Export"/>: "RECORDS FILE", the records of spool.bin the node file holds.</summary>
    public const string ExportedFile = "exported";

    /// <summary>
    /// How long after its end a day's spool may be removed (JobStateCleanup): a read's day is the day of its stamp, and
    /// a stamp is at most a period old when its day opens, so a sampler never opens a day this long over (barring a clock
    /// stepped back further), whose file an export of a fresh spool would replace.
    /// </summary>
    public static readonly TimeSpan PruneAfter = TimeSpan.FromHours(1);

    /// <summary>
    /// The node file that holds every record of the day's spool.bin as it is now (<see cref="ExportedFile"/> and the file
    /// still there, not a link), or null: never exported, or written since (a restarted sampler reopened the day).
    /// </summary>
    public static string? ExportedTo(string dayDir)
    {
        if (ExportedRecord(dayDir) is not { } last || last.Records != NodeReadWindows.RecordsIn(dayDir)) return null;
        var file = new FileInfo(last.File);
        return file.Exists && file.LinkTarget is null ? file.FullName : null;
    }

    /// <summary>The day's <see cref="ExportedFile"/> as its last export wrote it (records, file), or null.</summary>
    private static (long Records, string File)? ExportedRecord(string dayDir)
    {
        string text;
        try { text = File.ReadAllText(Path.Combine(dayDir, ExportedFile)); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        int space = text.IndexOf(' ');
        if (space <= 0 || !long.TryParse(text.AsSpan(0, space), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long records))
            return null;
        return (records, text[(space + 1)..].TrimEnd('\n'));
    }

    /// <summary>Rows of an existing Parquet file (its footer's num_rows), or null when there is none or it cannot be read.</summary>
    private static long? RowsIn(string file)
    {
        try
        {
            using var fs = new FileStream(file, FileMode.Open, FileAccess.Read);
            return ParquetFooter.Read(fs).Meta.Int(FileMetaDataNumRows);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException) { return null; }
    }

    /// <summary>FileMetaData.num_rows (parquet.thrift).</summary>
    private const short FileMetaDataNumRows = 3;

    /// <summary>The first free <c>&lt;node&gt;.&lt;day&gt;.part&lt;n&gt;.parquet</c> beside the day's file.</summary>
    private static string PartPath(string dayFile)
    {
        string stem = dayFile[..^".parquet".Length];
        for (int n = 1; ; n++)
            if (!File.Exists($"{stem}.part{n}.parquet")) return $"{stem}.part{n}.parquet";
    }

    public static string ParquetPath(AlumetConfig cfg, string cluster, string node, string day) =>
        Path.Combine(cfg.Paths.DataDir, cluster, Directory, node, $"{node}.{day}.parquet");

    /// <summary>Creates <paramref name="dir"/> if needed and makes it root-only (0700).</summary>
    internal static void RootOnlyDirectory(string dir)
    {
        System.IO.Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
