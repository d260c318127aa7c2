using Alumet.Hpc.Sources.Nvml;

namespace Alumet.Hpc.Tests.Sources.Nvml;

public class GpuAllocationTests
{
    // Four GPUs whose /dev/nvidiaN numbers differ from NVML's order on purpose.
    private static readonly GpuDevice[] Devices =
    {
        new(0, "GPU-aaaaaaaa-0000-0000-0000-000000000000", "0000:17:00.0", "NVIDIA H100", 1, false, GpuEnergyMethod.EnergyCounter),
        new(1, "GPU-bbbbbbbb-0000-0000-0000-000000000000", "0000:3b:00.0", "NVIDIA H100", 0, false, GpuEnergyMethod.EnergyCounter),
        new(2, "GPU-cccccccc-0000-0000-0000-000000000000", "0000:86:00.0", "NVIDIA H100", 2, true, GpuEnergyMethod.EnergyCounter),
        new(3, "GPU-dddddddd-0000-0000-0000-000000000000", "0000:af:00.0", "NVIDIA H100", 3, false, GpuEnergyMethod.EnergyCounter),
    };

    [Fact]
    public void ParsesListsAndRanges()
    {
        Assert.Equal(new[] { "0", "2", "3", "5" }, GpuAllocation.Parse(" 0,2-3 ,5,3").Entries);
        Assert.Equal(new[] { "GPU-abc", "0000:3b:00.0" }, GpuAllocation.Parse("GPU-abc,0000:3b:00.0").Entries);
        Assert.True(GpuAllocation.Parse("").IsEmpty);
        Assert.True(GpuAllocation.Parse(null).IsEmpty);
        Assert.True(GpuAllocation.Parse("NoDevFiles").IsEmpty);
    }

    [Fact]
    public void SlurmPrefersSlurmJobGpusOverCudaVisibleDevices()
    {
        var env = new Dictionary<string, string?> { ["SLURM_JOB_GPUS"] = "1,3", ["CUDA_VISIBLE_DEVICES"] = "0,1" };
        Assert.Equal(new[] { "1", "3" }, GpuAllocation.FromSlurm(k => env.GetValueOrDefault(k)).Entries);
        env.Remove("SLURM_JOB_GPUS");
        Assert.Equal(new[] { "0", "1" }, GpuAllocation.FromSlurm(k => env.GetValueOrDefault(k)).Entries);
        env.Clear();
        Assert.True(GpuAllocation.FromSlurm(k => env.GetValueOrDefault(k)).IsEmpty);
    }

    [Fact]
    public void NumbersNameTheDeviceFileNotTheNvmlIndex()
    {
        var alloc = GpuAllocation.FromOarGpuDevices(new[] { 0, 2 });
        Assert.Equal(new[] { false, true, true, false }, alloc.Match(Devices, out var unmatched));
        Assert.Empty(unmatched);
        Assert.Equal(new HashSet<string> { "0000:3b:00.0", "0000:86:00.0" }, alloc.ResourceIds(Devices, out _));
    }

    [Fact]
    public void NumbersFallBackToTheNvmlIndexWhenTheMinorNumberIsUnknown()
    {
        var devices = Devices.Select(d => d with { MinorNumber = -1 }).ToArray();
        Assert.Equal(new[] { true, false, false, false }, GpuAllocation.Parse("0").Match(devices, out _));
    }

    [Fact]
    public void UuidsBusIdsAndOldStyleMigNamesResolveToTheirGpu()
    {
        var alloc = GpuAllocation.Parse("gpu-AAAAAAAA-0000-0000-0000-000000000000,00000000:AF:00.0,MIG-GPU-cccccccc-0000-0000-0000-000000000000/1/0,MIG-12345678-aaaa-bbbb-cccc-000000000000,9");
        Assert.Equal(new[] { true, false, true, true }, alloc.Match(Devices, out var unmatched));
        Assert.Equal(new[] { "MIG-12345678-aaaa-bbbb-cccc-000000000000", "9" }, unmatched);
    }

    [Fact]
    public void OwnersChargeAllocatedGpusToTheJobAndTheRestToUnattributedOrOtherJobs()
    {
        var mine = GpuAllocation.Parse("1");
        Assert.Equal(new[] { GpuOwner.Job, GpuOwner.Unattributed, GpuOwner.Unattributed, GpuOwner.Unattributed },
            mine.Owners(Devices, out _));
        Assert.Equal(new[] { GpuOwner.Job, GpuOwner.OtherJobs, GpuOwner.Unattributed, GpuOwner.Unattributed },
            mine.Owners(Devices, out _, otherJobs: GpuAllocation.Parse("0,1")));
    }

    [Fact]
    public void SplitConservesEveryMillijoule()
    {
        var owners = new[] { GpuOwner.Job, GpuOwner.OtherJobs, GpuOwner.Unattributed, GpuOwner.Job };
        ulong[] node = { 123_456, ulong.MaxValue, 0, 7 };
        var job = new ulong[4];
        var other = new ulong[4];
        var unattributed = new ulong[4];
        GpuAttribution.Split(node, owners, job, other, unattributed);
        Assert.Equal(new ulong[] { 123_456, 0, 0, 7 }, job);
        Assert.Equal(new ulong[] { 0, ulong.MaxValue, 0, 0 }, other);
        Assert.Equal(new ulong[] { 0, 0, 0, 0 }, unattributed);

        var rng = new Random(42);
        var many = Enumerable.Range(0, 1000).Select(_ => (ulong)rng.NextInt64()).ToArray();
        var manyOwners = Enumerable.Range(0, 1000).Select(_ => (GpuOwner)rng.Next(3)).ToArray();
        job = new ulong[1000]; other = new ulong[1000]; unattributed = new ulong[1000];
        GpuAttribution.Split(many, manyOwners, job, other, unattributed);
        for (int i = 0; i < 1000; i++)
        {
            Assert.Equal(many[i], job[i] + other[i] + unattributed[i]);
            Assert.Equal(manyOwners[i] == GpuOwner.Job ? many[i] : 0, job[i]);
        }
    }
}
