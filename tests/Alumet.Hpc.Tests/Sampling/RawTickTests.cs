using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sampling;

/// <summary>
/// The raw-storage tick (storage_period_ms = 0, 1 kHz): what the tick thread calls, <c>MeasurementBuffer.Read</c> with the
/// node sampler as raw sink, allocates nothing once the series exist, with one job or sixteen sharing the node (their
/// shares are split at the snapshots, never per tick). Counted in bytes, not timed.
/// </summary>
public sealed class RawTickTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Wall0 = 1_700_000_000_000 * Ms;
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    public void ATickAllocatesNothingWhateverTheNumberOfJobs(int jobs)
    {
        var cfg = _rig.Config(storageMs: 0);
        _rig.SetCounters(1_000, 300, 100);
        _rig.Proc.SetStat(0, 0);
        for (int j = 0; j < jobs; j++) _rig.SetJobCpu($"{42 + j}", 0);
        using var node = _rig.NewNode(cfg);
        var slot = _rig.Slot!;
        for (int j = 0; j < jobs; j++) node.Register(NodeRig.Job($"{42 + j}"), false, 0, Wall0);
        for (long t = 1; t <= 10; t++) Assert.True(node.Buffer.Read(slot, t * Ms, Wall0 + t * Ms)); // the series are added here

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long t = 11; t <= 1010; t++) node.Buffer.Read(slot, t * Ms, Wall0 + t * Ms);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        node.Close(1011 * Ms, Wall0 + 1011 * Ms);
    }
}
