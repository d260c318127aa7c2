using System.Globalization;
using System.Text;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>
/// Where the Parquet files of a cluster live: one hive-partitioned dataset that DuckDB, Spark and Trino read in one
/// statement and prune by directory (README "Parquet dataset"):
/// <code>
/// &lt;data_dir&gt;/jobs/cluster=&lt;c&gt;/year=&lt;yyyy&gt;/month=&lt;mm&gt;/&lt;scheduler&gt;.&lt;job&gt;.&lt;node&gt;.&lt;run_id&gt;.&lt;tag&gt;.parquet   job's user, 0400
/// </code>
/// Year and month are those of the run's start (UTC). Job directories are 0711: anyone may open a file whose name
/// they know (the file's own mode decides), nobody but root lists them, so a user cannot enumerate other users' jobs;
/// <c>alumet-report --job N --parquet</c> gives a user their own files' paths (the database row's, never a rebuilt
/// name). The tag, keyed by the node's <see cref="DatasetKey"/>, keeps a name from being guessed: without it a user
/// who knows a job's node and start could <c>stat</c> the file and learn its owner, end and size (notes/s10/report.md
/// item 8). It is deterministic, so a finalization run twice writes the same file (a random one would leave two files
/// and double every sum over the dataset). Files written before it keep their names. The node's own series are not in this
/// dataset: they go to the node sampler's root-only file (<see cref="Spool.NodeSpool.ParquetPath"/>). Every name component is reduced to
/// [A-Za-z0-9._-] so that no value from the environment can climb out of data_dir.
/// </summary>
public static class ParquetDataset
{
    public const string JobsDir = "jobs";

    /// <summary>Traversable by all, listable by the owner (root) only.</summary>
    public const UnixFileMode JobDirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
    public const UnixFileMode FileMode = UnixFileMode.UserRead;

    /// <summary>The run of a job (<see cref="Jobs.RunId"/>; spools of older versions have none: their start time).</summary>
    public static string RunId(SpoolMeta meta) => meta.RunId.Length > 0 ? meta.RunId : Jobs.RunId.FromStartNs(meta.StartWallNs);

    /// <summary>The job file of one node of one run, named with the key in <c>state_dir</c> (made there when there is none).</summary>
    /// <exception cref="IOException">One sentence: the key is refused (a link, another user's file ...) or cannot be made.</exception>
    public static string JobFile(Config.PathsSection paths, SpoolMeta meta) => JobFile(paths.DataDir, meta, DatasetKey.Load(paths.StateDir));

    /// <summary>The job file of one node of one run, named with <paramref name="key"/>.</summary>
    public static string JobFile(string dataDir, SpoolMeta meta, ReadOnlySpan<byte> key)
    {
        string scheduler = Safe(meta.Scheduler), job = Safe(meta.JobId), node = Safe(meta.Node), run = Safe(RunId(meta));
        return Path.Combine(Partition(dataDir, JobsDir, meta), $"{scheduler}.{job}.{node}.{run}.{Tag(key, scheduler, job, node, run)}.parquet");
    }

    /// <summary>
    /// The name's keyed tag: the first 16 hex digits (64 bits) of HMAC-SHA256(key, "scheduler|job|node|run_id") over the
    /// name's own components (reduced by <see cref="Safe"/>, so none holds a '|' and the message is unambiguous).
    /// </summary>
    internal static string Tag(ReadOnlySpan<byte> key, string scheduler, string job, string node, string runId)
    {
        // Managed, not System.Security.Cryptography's: that loads OpenSSL into the finalize-job child (Core.HmacSha256).
        Span<byte> mac = stackalloc byte[Core.HmacSha256.HashSizeInBytes];
        Core.HmacSha256.HashData(key, Encoding.UTF8.GetBytes($"{scheduler}|{job}|{node}|{runId}"), mac);
        return Convert.ToHexStringLower(mac[..8]);
    }

    /// <summary>A glob over every job file of a cluster (all clusters when null).</summary>
    public static string JobsGlob(string dataDir, string? cluster = null) =>
        Path.Combine(dataDir, JobsDir, cluster is null ? "*" : $"cluster={Safe(cluster)}", "year=*", "month=*", "*.parquet");

    private static string Partition(string dataDir, string kind, SpoolMeta meta)
    {
        var start = DateTime.UnixEpoch.AddTicks(meta.StartWallNs / 100);
        return Path.Combine(dataDir, kind, $"cluster={Safe(meta.Cluster)}",
            start.ToString("'year='yyyy", CultureInfo.InvariantCulture), start.ToString("'month='MM", CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Creates the directories from data_dir down to <paramref name="file"/>'s directory with <paramref name="mode"/>
    /// (only the ones it creates: an admin's own modes on existing directories are kept).
    /// </summary>
    public static void CreateDirectories(string dataDir, string file, UnixFileMode mode)
    {
        string root = Path.GetFullPath(dataDir);
        string dir = Path.GetDirectoryName(Path.GetFullPath(file))!;
        if (!dir.StartsWith(root, StringComparison.Ordinal)) throw new IOException($"{file} is outside {dataDir}");
        var missing = new Stack<string>();
        for (string? d = dir; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d)) missing.Push(d);
        while (missing.TryPop(out var d))
        {
            if (OperatingSystem.IsWindows()) { Directory.CreateDirectory(d); continue; }
            // The data_dir itself is traversable like the job tree; below it, the requested mode.
            Directory.CreateDirectory(d, d.Length <= root.Length ? JobDirMode : mode);
            File.SetUnixFileMode(d, d.Length <= root.Length ? JobDirMode : mode); // umask may have narrowed it
        }
    }

    internal static string Safe(string s)
    {
        var chars = s.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray();
        string r = new string(chars).Trim('.');
        return r.Length == 0 ? "_" : r;
    }
}
