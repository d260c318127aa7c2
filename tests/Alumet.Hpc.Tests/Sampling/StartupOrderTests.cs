using System.Text.Json;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sampling;

/// <summary>
/// A one-job sampler's start (<c>sample</c>, <c>exec</c> as a user: <see cref="NodeSamplerHost.RunOneJob"/>), seen from
/// its sources: which read is the job's baseline, what <c>stats.json</c> stamps as the first sample, and that no other
/// thread starts before the tick thread's first read (a thread start costs its caller until the new thread runs).
/// </summary>
public sealed class StartupOrderTests : IDisposable
{
    private readonly NodeRig _rig = new();
    private readonly PowercapTree _psys = new PowercapTree().Zone("intel-rapl:1", "psys", 262_143_328_850);

    public void Dispose()
    {
        _rig.Dispose();
        _psys.Dispose();
    }

    /// <summary>A source that notes, for every read, the monotonic time before and after it and the order of all reads.</summary>
    private sealed class Recording(IEnergySource inner, string name, List<(string Source, long Before, long After)> log) : IEnergySource
    {
        public string Name => name;
        public IReadOnlyList<EnergyChannel> Channels => inner.Channels;

        public void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
        {
            long before = Clock.MonotonicNs();
            inner.Read(raw, ok, monotonicNs);
            long after = Clock.MonotonicNs();
            lock (log) log.Add((name, before, after));
        }

        public void Dispose() => inner.Dispose();
    }

    private static void WaitFor(Func<bool> condition, string what)
    {
        var end = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException($"timed out waiting for {what}");
            Thread.Sleep(5);
        }
    }

    /// <summary>Runs one job at raw 1 kHz until <paramref name="enough"/> holds for the reads, then returns its stats.json.</summary>
    private (JsonElement Stats, List<(string Source, long Before, long After)> Reads, long SpawnNs) RunOneJob(
        Func<List<(string Source, long Before, long After)>, bool> enough, bool withOwnThread)
    {
        var cfg = _rig.Config(storageMs: 0);
        cfg.Sampler.TickScheduling = "normal";
        cfg.Sampler.KeepState = "always"; // stats.json stays in the state directory after the finalization
        _rig.SetCounters(1_000_000, 300_000, 100_000);
        _rig.Proc.SetStat(0, 0);
        var reads = new List<(string Source, long Before, long After)>();
        var slots = new List<SourceSlot>
        {
            new(new Recording(new RaplSource(PowercapDiscovery.Discover(_rig.Powercap.Root).Zones), "rapl", reads), 1000, ownThread: false, maxPowerW: 1000),
        };
        // A source polled on its own thread (as NVML is), at the highest rate: were its thread started before the tick
        // thread's first read, its own first read would come first.
        if (withOwnThread)
            slots.Add(new(new Recording(new RaplSource(PowercapDiscovery.Discover(_psys.Root).Zones), "own", reads), 10_000, ownThread: true, maxPowerW: 1000));
        var job = new JobIdentity("exec", "test", "77", "alice", 1000, "node1");
        var reg = new JobRegistration(job, null, null, Exclusive: true, Raw: false, Clock.WallNs());
        using var sources = new SourceSet(slots, "test perimeter", "", []);
        using var cts = new CancellationTokenSource();
        long spawn = Clock.MonotonicNs();
        var host = new Thread(() => NodeSamplerHost.RunOneJob(cfg, sources, reg, new InProcessFinalization(cfg), cts.Token, out bool _, spawn)) { Name = "test-sampler" };
        host.Start();
        try { WaitFor(() => { lock (reads) return enough(reads); }, "the sampler's reads"); }
        finally
        {
            cts.Cancel();
            host.Join();
        }
        string stats = File.ReadAllText(Path.Combine(job.StateDirectory(cfg.Paths.StateDir), "stats.json"));
        lock (reads) return (JsonDocument.Parse(stats).RootElement.Clone(), reads.ToList(), spawn);
    }

    [Fact]
    public void TheFirstSampleIsTheBaselineReadOfEveryCounterAndTheFirstTickIsTheNextRead()
    {
        var (stats, reads, spawn) = RunOneJob(r => r.Count >= 3, withOwnThread: false);
        // Read 0 is the prime in the NodeSampler's constructor: the job's first period, and its energy, start there.
        // stats.json must stamp that read, as bench/c_reader.c stamps its own prime; before, it stamped read 1.
        long firstSample = spawn + (long)Math.Round(stats.GetProperty("first_sample_ms").GetDouble() * 1e6);
        Assert.InRange(firstSample, reads[0].After - 1_000, reads[1].Before + 1_000);
        Assert.True(firstSample < reads[1].After, $"first_sample_ms stamps the read after the baseline ({firstSample} >= {reads[1].After})");
        long firstTick = spawn + (long)Math.Round(stats.GetProperty("first_tick_ms").GetDouble() * 1e6);
        Assert.InRange(firstTick, reads[1].After - 1_000, reads[2].Before + 1_000);
        // The process's CPU time then (here the test host's): positive, and no more than it has used by now.
        Assert.InRange(stats.GetProperty("first_sample_cpu_ms").GetDouble(), 0.001, Environment.CpuUsage.TotalTime.TotalMilliseconds);
    }

    [Fact]
    public void NoOtherThreadStartsBeforeTheTickThreadsFirstRead()
    {
        var (_, reads, _) = RunOneJob(r => r.Count(x => x.Source == "own") >= 2 && r.Count(x => x.Source == "rapl") >= 3, withOwnThread: true);
        // Reads 0 and 1 are the primes (rapl, then own); the next rapl read is the tick thread's first.
        Assert.Equal(["rapl", "own"], reads.Take(2).Select(r => r.Source));
        int firstTick = reads.FindIndex(2, r => r.Source == "rapl");
        int firstOwn = reads.FindIndex(2, r => r.Source == "own");
        Assert.True(firstTick >= 0 && firstOwn > firstTick,
            $"the own-thread source read (#{firstOwn}) before the tick thread's first read (#{firstTick}): its thread started first");
    }

    [Fact]
    public void TheStartUpCheckRunsOnceOnTheHousekeepingThreadAfterTheFirstTick()
    {
        var cfg = _rig.Config(storageMs: 0);
        cfg.Sampler.TickScheduling = "normal";
        _rig.SetCounters(1_000_000, 300_000, 100_000);
        _rig.Proc.SetStat(0, 0);
        using var node = _rig.NewNode(cfg);
        node.Register(NodeRig.Job("42", exclusive: true), false, Clock.MonotonicNs());
        var sampler = new Sampler(node.Buffer, node);
        long startedAt = 0, calls = 0;
        string? thread = null;
        using var cts = new CancellationTokenSource();
        var t = new Thread(() => sampler.Run(cts.Token, () =>
        {
            Interlocked.Increment(ref calls);
            thread = Thread.CurrentThread.Name;
            Interlocked.Exchange(ref startedAt, Clock.MonotonicNs());
        }));
        t.Start();
        try { WaitFor(() => Interlocked.Read(ref startedAt) != 0 && sampler.Ticks >= 3, "the start-up check and 3 ticks"); }
        finally
        {
            cts.Cancel();
            t.Join();
        }
        Assert.Equal(1, calls);
        Assert.Equal("housekeeping", thread);
        Assert.True(sampler.FirstSampleNs > 0 && startedAt > sampler.FirstSampleNs, "the start-up check ran before the first tick's read");
    }
}
