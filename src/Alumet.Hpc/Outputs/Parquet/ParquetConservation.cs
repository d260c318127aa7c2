using System.Globalization;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs.Parquet;

public enum ConservationOutcome { Conserves, Violated, NothingToCheck, Unreadable }

/// <summary>What <see cref="ParquetConservation.CheckAsync"/> found in one file, in words for the command's output.</summary>
/// <param name="Intervals">Intervals checked (domain × period holding the full split).</param>
/// <param name="Violations">Intervals where node ≠ Σ jobs + other_jobs + unattributed (plus node rows after the last split).</param>
/// <param name="ShareOnly">Share rows of periods without the split (the job shared the node: its file holds its own share only).</param>
/// <param name="Flagged">Checked intervals with a flag (<see cref="SpoolFlags"/>): lower bound, read error or a rejected reading.</param>
/// <param name="Rejected">Of those, intervals where an impossible reading was rejected (flag 4, 0 counted for it).</param>
public sealed record ConservationResult(string Path, ConservationOutcome Outcome, string Detail,
    long Intervals = 0, long Violations = 0, long ShareOnly = 0, long Flagged = 0, long Rejected = 0);

/// <summary>
/// Checks the invariant every alumet-hpc file keeps (README "Parquet schema"): for every domain and every period that
/// holds the split (an <c>unattributed</c> row),
/// <code>Σ energy_raw of the node rows in the period = Σ energy_raw of job:*, other_jobs and unattributed at its end</code>
/// exactly, on the stored integers. Aggregated files have one node row per period at the split's timestamp; raw files
/// (storage_period_ms 0) have one node row per read, and a period is (previous split, this split]. Steps are parts of
/// their job's share and are not added. A job that shared the node has only its own share in its file: nothing to check
/// there (the node's root-only file has the whole split). Two passes over the file: memory is per period, not per read.
/// </summary>
public static class ParquetConservation
{
    /// <summary>Violations named in full on the output line; the rest are counted.</summary>
    public const int Named = 3;

    private sealed class Period
    {
        public long Parts, Node;
        public int Flags, NodeRows;
        public bool Split;
    }

    public static async Task<ConservationResult> CheckAsync(string path, CancellationToken ct = default)
    {
        try
        {
            // Pass 1: the splits (every non-node row), per domain and end timestamp.
            var domains = new Dictionary<string, Dictionary<long, Period>>(StringComparer.Ordinal);
            bool integers = true;
            long rows = 0;
            await foreach (var g in ParquetRows.ReadAsync(path, noFollow: true, ct).ConfigureAwait(false))
            {
                if (g.EnergyRaw is null) { integers = false; break; }
                rows += g.Count;
                // Per series, once per row group: its domain's periods, null for node rows and steps (parts of a job's share).
                var partsOf = new Dictionary<long, Period>?[g.Series.Length];
                var splits = new bool[g.Series.Length];
                for (int s = 0; s < partsOf.Length; s++)
                {
                    string consumer = g.Series[s].Consumer;
                    if (consumer == SpoolSeries.NodeConsumer) continue;
                    bool part = consumer == SpoolSeries.UnattributedConsumer || consumer == SpoolSeries.OtherJobsConsumer || consumer.StartsWith(SpoolSeries.JobConsumerPrefix, StringComparison.Ordinal);
                    if (!part) continue;
                    string domain = g.Series[s].Domain;
                    if (!domains.TryGetValue(domain, out var periods)) domains[domain] = periods = [];
                    (partsOf[s], splits[s]) = (periods, consumer == SpoolSeries.UnattributedConsumer);
                }
                for (int i = 0; i < g.Count; i++)
                {
                    int s = g.SeriesOf[i];
                    if (partsOf[s] is not { } periods) continue;
                    if (!periods.TryGetValue(g.EndUs[i], out var p)) periods[g.EndUs[i]] = p = new Period();
                    p.Parts = checked(p.Parts + g.EnergyRaw[i]);
                    p.Flags |= g.Flags[i];
                    if (splits[s]) p.Split = true;
                }
            }
            if (!integers) return new(path, ConservationOutcome.NothingToCheck, "schema 1 file (no energy_raw column): its doubles cannot be checked exactly");
            if (rows == 0) return new(path, ConservationOutcome.NothingToCheck, "no rows");

            // The periods that hold the split, in time order per domain.
            var ends = new Dictionary<string, (long[] Ends, Period[] Periods)>(StringComparer.Ordinal);
            long shareOnly = 0;
            foreach (var (domain, periods) in domains)
            {
                var split = periods.Where(kv => kv.Value.Split).OrderBy(kv => kv.Key).ToArray();
                shareOnly += periods.Count - split.Length;
                ends[domain] = (split.Select(kv => kv.Key).ToArray(), split.Select(kv => kv.Value).ToArray());
            }

            // Pass 2: every node row goes to the split period holding its end, (previous split, this split].
            var late = new Dictionary<string, (long Rows, long FirstUs)>(StringComparer.Ordinal);
            bool anyNode = false;
            await foreach (var g in ParquetRows.ReadAsync(path, noFollow: true, ct).ConfigureAwait(false))
            {
                // Per series, once per row group: a node series' split periods (null for the other consumers).
                var splitsOf = new (long[] Ends, Period[] Periods)?[g.Series.Length];
                for (int s = 0; s < splitsOf.Length; s++)
                    if (g.Series[s].Consumer == SpoolSeries.NodeConsumer)
                        splitsOf[s] = ends.TryGetValue(g.Series[s].Domain, out var split) ? split : ([], []);
                for (int i = 0; i < g.Count; i++)
                {
                    if (splitsOf[g.SeriesOf[i]] is not { } d) continue;
                    anyNode = true;
                    int at = Array.BinarySearch(d.Ends, g.EndUs[i]);
                    if (at < 0) at = ~at;
                    if (at >= d.Ends.Length)
                    {
                        // Node energy after the last split: counted by nobody (or a node series without its split).
                        string domain = g.Domain(i);
                        var l = late.GetValueOrDefault(domain, (0, g.EndUs[i]));
                        late[domain] = (l.Rows + 1, Math.Min(l.FirstUs, g.EndUs[i]));
                        continue;
                    }
                    var p = d.Periods[at];
                    p.Node = checked(p.Node + g.EnergyRaw![i]);
                    p.NodeRows++;
                    p.Flags |= g.Flags[i];
                }
            }

            long intervals = 0, violations = 0, flagged = 0, rejected = 0, nodeRows = 0;
            var named = new List<string>();
            foreach (var (domain, d) in ends.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                for (int k = 0; k < d.Ends.Length; k++)
                {
                    var p = d.Periods[k];
                    intervals++;
                    nodeRows += p.NodeRows;
                    if (p.Flags != 0) flagged++;
                    if ((p.Flags & (int)SpoolFlags.Implausible) != 0) rejected++;
                    if (p.Node == p.Parts) continue;
                    violations++;
                    if (named.Count < Named)
                        named.Add($"{domain} interval ending {Time(d.Ends[k])}: node {p.Node} ({p.NodeRows} row(s)) but jobs + unattributed {p.Parts} (raw units)");
                }
            foreach (var (domain, l) in late.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                violations++;
                if (named.Count < Named)
                    named.Add($"{domain}: {l.Rows} node row(s) from {Time(l.FirstUs)} after the last split, attributed to no one");
            }
            string flags = flagged == 0 ? "none flagged" : $"{flagged} flagged ({rejected} with a rejected reading)";
            if (violations > 0)
                return new(path, ConservationOutcome.Violated,
                    $"{violations} of {intervals} interval(s) break node = jobs + unattributed: {string.Join("; ", named)}{(violations > named.Count ? $"; and {violations - named.Count} more" : "")}",
                    intervals, violations, shareOnly, flagged, rejected);
            if (intervals == 0)
                return new(path, ConservationOutcome.NothingToCheck,
                    anyNode ? "node rows without any split" : $"no node series (the job shared the node): its own share only, {shareOnly} period(s)",
                    0, 0, shareOnly, 0, 0);
            return new(path, ConservationOutcome.Conserves,
                $"{intervals} interval(s) over {ends.Count(kv => kv.Value.Ends.Length > 0)} domain(s) conserve, {nodeRows} node row(s), {flags}{(shareOnly > 0 ? $", {shareOnly} share-only" : "")}",
                intervals, 0, shareOnly, flagged, rejected);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or NotSupportedException or OverflowException
            or ArgumentException or InvalidOperationException) // Parquet.Net's words for a file that is not Parquet
        {
            return new(path, ConservationOutcome.Unreadable, e.Message.Split('\n')[0].Trim());
        }
    }

    private static string Time(long us) =>
        DateTime.UnixEpoch.AddTicks(us * 10).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
