using Alumet.Hpc.Commands;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Outputs;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// <c>alumet-hpc parquet check</c>: per-interval conservation (node = Σ jobs + unattributed, on the stored integers) of
/// files the node sampler wrote from generated counters, and of hand-built files with one broken interval.
/// </summary>
public sealed class ParquetCheckTests : IDisposable
{
    private const long Ms = 1_000_000;
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static JobRegistration Job(string id, bool raw = false) => NodeRig.Job(id, raw: raw);

    private void Counters(ulong package, ulong core, ulong dram) => _rig.SetCounters(package, core, dram);

    private void Cpu(string id, ulong ns) => _rig.SetJobCpu(id, ns);

    private static (int Code, string Out, string Err) Check(params string[] paths)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = ParquetCommand.Check(paths, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>
    /// Job 42 alone, then 43 beside it, then 42 alone again; aggregated storage. The node file and 42's file hold the
    /// split for every period they cover; 43 shared the node all along: its file has its own share only.
    /// </summary>
    private (string NodeFile, string Job42, string Job43) SampleTwoJobs(bool raw42)
    {
        var cfg = _rig.Config();
        Counters(0, 0, 0);
        _rig.Proc.SetStat(0, 0);
        Cpu("42", 0);
        Cpu("43", 0);
        using var node = _rig.NewNode(cfg);
        Counters(100_000, 30_000, 10_000);
        node.Buffer.Read(_rig.Slot!, 200 * Ms, 10_200 * Ms);    // the first period began before the job registered
        node.Register(Job("42", raw42), false, 300 * Ms, 10_300 * Ms); // and ends there: the node's alone
        Counters(300_000, 100_000, 50_000);
        node.Buffer.Read(_rig.Slot!, 500 * Ms, 10_500 * Ms);
        Counters(600_000, 200_000, 100_000);
        _rig.Proc.SetStat(100, 0);
        Cpu("42", 1_000_000_000);
        node.Snapshot(1000 * Ms, 11_000 * Ms);              // 42 alone: split with unattributed
        node.Register(Job("43"), false, 1000 * Ms);
        Counters(900_001, 300_000, 150_000);
        _rig.Proc.SetStat(200, 0);
        Cpu("42", 1_300_000_000);
        Cpu("43", 600_000_000);
        node.Snapshot(2000 * Ms, 12_000 * Ms);              // shared: 42's file holds its share only
        Counters(1_000_000, 300_000, 150_000);
        var end43 = node.End(Job("43").Key, true, "", 2500 * Ms, 12_500 * Ms)!;
        Counters(1_200_000, 400_000, 160_000);
        _rig.Proc.SetStat(300, 0);
        Cpu("42", 1_700_000_000);
        var end42 = node.End(Job("42").Key, true, "", 3000 * Ms, 13_000 * Ms)!;
        Counters(1_250_000, 400_000, 170_000);
        node.Close(3200 * Ms, 13_200 * Ms);                // the sampler exits: the node's last period, no job
        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "node1.*.parquet", SearchOption.AllDirectories).Single();
        return (nodeFile, end42.ParquetPath!, end43.ParquetPath!);
    }

    [Fact]
    public void FilesTheNodeSamplerWroteConserveInEveryInterval()
    {
        var (nodeFile, job42, job43) = SampleTwoJobs(raw42: false);

        var node = Check(nodeFile);
        Assert.Equal(0, node.Code);
        // 6 periods (10.3, 11.0, 12.0, 12.5, 13.0 and 13.2 s) × 3 domains: every one holds node = Σ jobs + unattributed.
        Assert.Equal($"ok: {nodeFile}: 18 interval(s) over 3 domain(s) conserve, 18 node row(s), none flagged", node.Out.Split('\n')[0]);

        var j42 = Check(job42);
        Assert.Equal(0, j42.Code);
        // Alone in the first and last periods (3 each), shared in the two between (its share only).
        Assert.Equal($"ok: {job42}: 6 interval(s) over 3 domain(s) conserve, 6 node row(s), none flagged, 6 share-only", j42.Out.Split('\n')[0]);

        var j43 = Check(job43);
        Assert.Equal(0, j43.Code);
        Assert.Equal($"unchecked: {job43}: no node series (the job shared the node): its own share only, 6 period(s)", j43.Out.Split('\n')[0]);

        // A directory: every file under it, one line each, and the total.
        var all = Check(Path.Combine(Path.GetDirectoryName(nodeFile)!, "..", "..", ".."));
        Assert.Equal(0, all.Code);
        Assert.Contains("3 file(s): 2 conserve, 0 violate, 1 with nothing to check, 0 unreadable", all.Out);
    }

    [Fact]
    public void ARawJobRegisteredMidPeriodKeepsEveryIntervalOfTheNodeAndJobFiles()
    {
        // Raw storage starts when job 42 registers (between snapshots, after a read): the node series is then one row
        // per read, and each period's split must still equal the reads in it.
        var (nodeFile, job42, _) = SampleTwoJobs(raw42: true);
        var node = Check(nodeFile);
        Assert.True(node.Code == 0, node.Out + node.Err);
        var j42 = Check(job42);
        Assert.True(j42.Code == 0, j42.Out + j42.Err);
        Assert.StartsWith($"ok: {job42}: 6 interval(s) over 3 domain(s) conserve", j42.Out);
    }

    [Fact]
    public void AHandBrokenIntervalIsNamedAndTheExitIsOne()
    {
        using var tmp = new TempDir();
        var meta = Meta(jobId: "7");
        meta.StoragePeriodMs = 1000;
        meta.Series = [S("node", "cpu_package", "0"), S("job:7", "cpu_package", "0"), S("unattributed", "cpu_package", "0"), S("step:7.0", "cpu_package", "0")];
        long s = 1_000 * Ms;
        var records = new List<SpoolRecord>();
        // (node, job, unattributed) per second; the second second loses 1 µJ between node and its parts.
        long[][] v = [[1_000_000, 600_000, 400_000], [1_000_000, 600_000, 399_999], [500_000, 0, 500_000]];
        for (int k = 0; k < v.Length; k++)
        {
            for (int c = 0; c < 3; c++) records.Add(R(T0 + (k + 1) * s, s, v[k][c], c, k == 2 && c == 0 ? SpoolFlags.Implausible : SpoolFlags.None));
            records.Add(R(T0 + (k + 1) * s, s, v[k][1] / 2, 3)); // a step: part of the job's share, never added
        }
        Write(tmp.Sub("broken"), meta, records);
        string file = ParquetExporter.ExportAsync(tmp.Sub("broken"), tmp.Sub("broken.parquet")).GetAwaiter().GetResult().Path;

        var r = Check(file);
        Assert.Equal(1, r.Code);
        Assert.Equal($"violation: {file}: 1 of 3 interval(s) break node = jobs + unattributed: cpu_package:0 interval ending 2025-11-13T02:13:22.000000Z: node 1000000 (1 row(s)) but jobs + unattributed 999999 (raw units)",
            r.Err.Trim());
        Assert.Contains("1 file(s): 0 conserve, 1 violate, 0 with nothing to check, 0 unreadable", r.Out);

        // Fixed: the same file conserves, and the third second's rejected reading is reported as flagged.
        v[1][2] = 400_000;
        records = records.Select(x => x.Series == 2 && x.WallNs == T0 + 2 * s ? R(x.WallNs, x.IntervalNs, 400_000, 2) : x).ToList();
        Write(tmp.Sub("fixed"), meta, records);
        string good = ParquetExporter.ExportAsync(tmp.Sub("fixed"), tmp.Sub("fixed.parquet")).GetAwaiter().GetResult().Path;
        var ok = Check(good);
        Assert.Equal(0, ok.Code);
        Assert.Equal($"ok: {good}: 3 interval(s) over 1 domain(s) conserve, 3 node row(s), 1 flagged (1 with a rejected reading)", ok.Out.Split('\n')[0]);
    }

    [Fact]
    public void RawNodeRowsAreSummedOverTheirPeriodAndRowsAfterTheLastSplitAreViolations()
    {
        using var tmp = new TempDir();
        var meta = Meta(jobId: "8");
        meta.Series = [S("node", "dram", "0"), S("job:8", "dram", "0"), S("unattributed", "dram", "0")];
        var records = new List<SpoolRecord>();
        // Two 1 s periods of 4 reads of 250 ms (raw storage), then one read after the last split.
        for (int k = 1; k <= 8; k++) records.Add(R(T0 + k * 250 * Ms, 250 * Ms, 1000 + k, 0));
        records.Add(R(T0 + 1000 * Ms, 1000 * Ms, 3000, 1));
        records.Add(R(T0 + 1000 * Ms, 1000 * Ms, 1000 + 1 + 2 + 3 + 4, 2));
        records.Add(R(T0 + 2000 * Ms, 2000 * Ms, 4000 + 5 + 6 + 7 + 8, 1));
        records.Add(R(T0 + 2000 * Ms, 2000 * Ms, 0, 2));
        Write(tmp.Sub("raw"), meta, records);
        string file = ParquetExporter.ExportAsync(tmp.Sub("raw"), tmp.Sub("raw.parquet")).GetAwaiter().GetResult().Path;
        var r = Check(file);
        Assert.True(r.Code == 0, r.Out + r.Err);
        Assert.StartsWith($"ok: {file}: 2 interval(s) over 1 domain(s) conserve, 8 node row(s), none flagged", r.Out);

        records.Add(R(T0 + 2250 * Ms, 250 * Ms, 7, 0));
        Write(tmp.Sub("late"), meta, records);
        string late = ParquetExporter.ExportAsync(tmp.Sub("late"), tmp.Sub("late.parquet")).GetAwaiter().GetResult().Path;
        var l = Check(late);
        Assert.Equal(1, l.Code);
        Assert.Contains("dram:0: 1 node row(s) from 2025-11-13T02:13:22.250000Z after the last split, attributed to no one", l.Err);
    }

    [Fact]
    public void ASchema1FileHasNoIntegersToCheck()
    {
        string old = Path.Combine(AppContext.BaseDirectory, "Golden", "parquet-v1-423c89e.parquet");
        var r = Check(old);
        Assert.Equal(0, r.Code);
        Assert.Equal($"unchecked: {old}: schema 1 file (no energy_raw column): its doubles cannot be checked exactly", r.Out.Split('\n')[0]);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void BadPathsLinksAndNonParquetFilesAreSentences()
    {
        using var tmp = new TempDir();
        var missing = Check(tmp.Sub("nope"));
        Assert.Equal(2, missing.Code);
        Assert.Equal($"alumet-hpc parquet check: {tmp.Sub("nope")}: no such file or directory", missing.Err.Trim());

        File.WriteAllText(tmp.Sub("junk.parquet"), "not parquet at all");
        File.CreateSymbolicLink(tmp.Sub("link.parquet"), tmp.Sub("junk.parquet"));
        var link = Check(tmp.Sub("link.parquet"));
        Assert.Equal(2, link.Code);
        Assert.Contains("a symbolic link: not followed", link.Err);

        // In a directory, the link is not followed (the junk file itself is reported once), and a FIFO under a
        // .parquet name is refused without blocking.
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", tmp.Sub("fifo.parquet"))) mkfifo.WaitForExit();
        Assert.True(File.Exists(tmp.Sub("fifo.parquet")));
        var dir = Check(tmp.Path);
        Assert.Equal(1, dir.Code);
        Assert.Contains($"error: {tmp.Sub("junk.parquet")}: cannot be checked: ", dir.Err);
        Assert.Contains($"error: {tmp.Sub("fifo.parquet")}: cannot be checked: not a regular file", dir.Err);
        Assert.DoesNotContain("link.parquet", dir.Out + dir.Err);
        Assert.DoesNotContain("   at ", dir.Err); // a sentence, no stack trace
        Assert.Contains("2 file(s): 0 conserve, 0 violate, 0 with nothing to check, 2 unreadable", dir.Out);
        // And a symlink that replaces a file after enumeration is refused by the open itself (O_NOFOLLOW).
        var opened = ParquetConservation.CheckAsync(tmp.Sub("link.parquet")).GetAwaiter().GetResult();
        Assert.Equal(ConservationOutcome.Unreadable, opened.Outcome);
        Assert.Equal("a symbolic link: not followed", opened.Detail);
        // So is a directory on the way swapped for a link after the listing (the file itself is not a link).
        Directory.CreateDirectory(tmp.Sub("elsewhere"));
        File.Copy(tmp.Sub("junk.parquet"), tmp.Sub("elsewhere/x.parquet"));
        Directory.CreateSymbolicLink(tmp.Sub("planted"), tmp.Sub("elsewhere"));
        var through = ParquetConservation.CheckAsync(tmp.Sub("planted/x.parquet")).GetAwaiter().GetResult();
        Assert.Equal(ConservationOutcome.Unreadable, through.Outcome);
        Assert.Equal($"reached through a symbolic link (it is {tmp.Sub("elsewhere/x.parquet")}): not followed", through.Detail);
        // An argument the admin gives through a link of their own is resolved once, then checked under its real name.
        var given = Check(tmp.Sub("planted/x.parquet"));
        Assert.Contains($"error: {tmp.Sub("elsewhere/x.parquet")}: cannot be checked: ", given.Err);
        Assert.DoesNotContain("symbolic link", given.Err);
    }
}
