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
        GpuAllocation FromSlurm(out string variable) =>
            GpuAllocation.TryFromSlurm(k => env.GetValueOrDefault(k), out var a, out variable, out _) ? a : throw new Xunit.Sdk.XunitException("refused");
        Assert.Equal(new[] { "1", "3" }, FromSlurm(out string v).Entries);
        Assert.Equal("SLURM_JOB_GPUS", v);
        env.Remove("SLURM_JOB_GPUS");
        Assert.Equal(new[] { "0", "1" }, FromSlurm(out v).Entries);
        Assert.Equal("CUDA_VISIBLE_DEVICES", v);
        env.Clear();
        Assert.True(FromSlurm(out _).IsEmpty);
    }

    [Theory]
    [InlineData("0,1;reboot", "entry '1;reboot' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id")]
    [InlineData("3-1", "entry '3-1' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id")]
    [InlineData("12345", "entry '12345' is not a GPU index, a range a-b, a GPU-/MIG- UUID or a PCI bus id")]
    [InlineData("0-64", "it names more than 64 GPUs")]
    [InlineData("0\n1", "an entry holds characters other than printable ASCII")]
    public void RefusesWhatNoSchedulerWritesWithTheReason(string list, string expected)
    {
        Assert.False(GpuAllocation.TryParse(list.Replace("\\n", "\n"), out var a, out string? error));
        Assert.True(a.IsEmpty);
        Assert.Equal(expected, error);
    }

    [Fact]
    public void SixtyFourGpusAreAccepted()
    {
        Assert.True(GpuAllocation.TryParse("0-63", out var a, out _));
        Assert.Equal(64, a.Entries.Count);
        Assert.Equal("0,1,2", GpuAllocation.Parse("0-2").List);
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
    public void EachGpuGoesWholeToTheJobThatHoldsItAndEveryMillijouleIsKept()
    {
        // Three jobs, four GPU channels: job 0 holds GPU 0, job 2 holds GPUs 1 and 3, GPU 2 is nobody's.
        var owns = new List<bool[]> { new[] { true, false, false, false }, new bool[4], new[] { false, true, false, true } };
        Assert.Equal(new[] { 0, 2, -1, 2 }, Enumerable.Range(0, 4).Select(c => GpuAttribution.Owner(c, exclusiveJob: -1, owns)));
        Assert.Equal(new[] { 1, 1, 1, 1 }, Enumerable.Range(0, 4).Select(c => GpuAttribution.Owner(c, exclusiveJob: 1, owns)));

        var rng = new Random(42);
        for (int i = 0; i < 1000; i++)
        {
            ulong delta = (ulong)rng.NextInt64();
            int owner = rng.Next(-1, 3);
            var shares = new ulong[3];
            ulong unattributed = GpuAttribution.Split(delta, owner, shares);
            Assert.Equal(delta, shares[0] + shares[1] + shares[2] + unattributed);
            if (owner >= 0) Assert.Equal(delta, shares[owner]);
        }
    }
}
