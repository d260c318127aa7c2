using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Sources;
using Alumet.Hpc.Sources.Nvml;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Fakes.Nvml;

namespace Alumet.Hpc.Tests.Sources.Nvml;

public class NvmlSourceTests
{
    private const long S = 1_000_000_000;

    private static NvmlSource Open(FakeNvml fake)
    {
        NvmlSource? source = NvmlSource.TryOpen(fake.LibraryPath, out string status);
        Assert.True(source is not null, status);
        return source!;
    }

    private static (ulong[] Raw, bool[] Ok) Read(IEnergySource source, long ns)
    {
        var raw = new ulong[source.Channels.Count];
        var ok = new bool[source.Channels.Count];
        source.Read(raw, ok, ns);
        return (raw, ok);
    }

    [Fact]
    public void EnergyCountersAreReadExactly()
    {
        using var fake = new FakeNvml("""
            dev 0 uuid GPU-11111111-2222-3333-4444-555555555555
            dev 0 bus_id 00000000:3B:00.0
            dev 0 name NVIDIA H100 80GB HBM3
            dev 0 minor 2
            dev 0 energy file:e0
            dev 1 uuid GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
            dev 1 bus_id 00000001:86:1F.7
            dev 1 name NVIDIA A100-SXM4-40GB
            dev 1 energy file:e1
            """);
        fake.Set("e0", 123_456_789_012UL);
        fake.Set("e1", 18_446_744_073_709_551_000UL); // near 2^64: the full 64-bit range survives the binding

        using NvmlSource source = Open(fake);
        Assert.Equal("nvml", source.Name);
        Assert.Empty(source.SkippedDevices);
        Assert.Equal(new[] { "gpu:0000:3b:00.0", "gpu:0001:86:1f.7" }, source.Channels.Select(c => c.Resource.ToString()));
        Assert.All(source.Channels, c =>
        {
            Assert.Equal(MeasurementInterface.NvmlEnergyCounter, c.Interface);
            Assert.Equal(1e-3, c.JoulesPerUnit);
            Assert.Equal(0UL, c.Modulus);
            Assert.Equal("mJ", c.UnitName);
        });
        Assert.Equal(new[] { "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB" }, source.Channels.Select(c => c.Label));
        Assert.Equal(new GpuDevice(0, "GPU-11111111-2222-3333-4444-555555555555", "0000:3b:00.0", "NVIDIA H100 80GB HBM3", 2, false, GpuEnergyMethod.EnergyCounter),
            source.Devices[0]);
        Assert.Equal(1, source.Devices[1].MinorNumber); // fake default: minor = index

        var (raw, ok) = Read(source, 5 * S);
        Assert.Equal(new[] { 123_456_789_012UL, 18_446_744_073_709_551_000UL }, raw);
        Assert.Equal(new[] { true, true }, ok);
        Assert.True(double.IsNaN(source.PowerW[0]));

        fake.Set("e0", 123_456_789_012UL + 300_000); // +300 J in 1 s
        fake.Set("e1", 18_446_744_073_709_551_615UL);
        (raw, ok) = Read(source, 6 * S);
        Assert.Equal(new[] { 123_457_089_012UL, 18_446_744_073_709_551_615UL }, raw);
        Assert.Equal(new[] { true, true }, ok);
        Assert.Equal(300.0, source.PowerW[0]);  // 300 000 mJ / 1 s
        Assert.Equal(0.615, source.PowerW[1], 12);

        // Counter not refreshed yet (NVML updates every 20-100 ms): power keeps its last value.
        (raw, _) = Read(source, 6 * S + 50_000_000);
        Assert.Equal(123_457_089_012UL, raw[0]);
        Assert.Equal(300.0, source.PowerW[0]);
    }

    [Fact]
    public void ConstantPowerIsIntegratedExactlyKeepingTheSubMillijouleRemainder()
    {
        using var fake = new FakeNvml("""
            dev 0 bus_id 00000000:17:00.0
            dev 0 name Tesla P100-PCIE-16GB
            dev 0 energy unsupported
            dev 0 instant 333
            dev 0 power 999999
            """);
        using NvmlSource source = Open(fake);
        Assert.Equal(GpuEnergyMethod.IntegratedInstantPower, source.Devices[0].Method);
        Assert.Equal(MeasurementInterface.NvmlIntegratedPower, source.Channels[0].Interface);
        Assert.Contains("integrated power", source.Perimeter);

        // 333 mW for 1 000 001 ns = 0.333000333 mJ per interval: whole mJ appear only as the remainder adds up.
        long t0 = 7 * S;
        var observed = new List<ulong>();
        for (int k = 0; k <= 10_000; k++)
        {
            var (raw, ok) = Read(source, t0 + k * 1_000_001L);
            Assert.True(ok[0]);
            if (k is 0 or 3 or 4 or 9 or 10 or 10_000) observed.Add(raw[0]);
        }
        // floor(k * 333 * 1 000 001 / 1e9): 0, 0.999, 1.332, 2.997, 3.33, 3330.00333
        Assert.Equal(new ulong[] { 0, 0, 1, 2, 3, 3330 }, observed);
        Assert.Equal(0.333, source.PowerW[0]);
    }

    [Fact]
    public void ChangingPowerIsIntegratedWithTheTrapezoidRuleAcrossAFailedRead()
    {
        using var fake = new FakeNvml("dev 0 energy err:3\ndev 0 instant file:p\n");
        fake.Set("p", 100_000);
        using NvmlSource source = Open(fake);

        Assert.Equal(new ulong[] { 0 }, Read(source, 10 * S).Raw);
        fake.Set("p", 200_000);
        Assert.Equal(new ulong[] { 150_000 }, Read(source, 11 * S).Raw);   // (100 W + 200 W) / 2 x 1 s
        fake.Set("p", "err:15");
        var (raw, ok) = Read(source, 12 * S);
        Assert.False(ok[0]);
        Assert.Equal(150_000UL, raw[0]);                                    // last good value repeated
        fake.Set("p", 0);
        (raw, ok) = Read(source, 13 * S);
        Assert.True(ok[0]);
        Assert.Equal(150_000UL + 200_000UL, raw[0]);                        // (200 W + 0 W) / 2 x 2 s, through the gap
        Assert.Equal(0.0, source.PowerW[0]);
    }

    [Fact]
    public void FallsBackToAveragePowerWhenTheInstantFieldIsUnsupported()
    {
        using var fake = new FakeNvml("""
            dev 0 energy unsupported
            dev 0 instant unsupported
            dev 0 power 50000
            """);
        using NvmlSource source = Open(fake);
        Assert.Equal(GpuEnergyMethod.IntegratedAveragePower, source.Devices[0].Method);
        Read(source, 1 * S);
        Assert.Equal(new ulong[] { 100_000 }, Read(source, 3 * S).Raw);  // 50 W x 2 s
        Assert.Equal(50.0, source.PowerW[0]);
    }

    [Fact]
    public void AGpuFailingAtEnumerationIsSkippedWhileTheOthersAreUsed()
    {
        using var fake = new FakeNvml("""
            dev 0 bus_id 00000000:01:00.0
            dev 0 energy 1000
            dev 1 handle err:15
            dev 2 bus_id 00000000:03:00.0
            dev 2 energy 3000
            dev 3 identity err:4
            dev 4 energy unsupported
            dev 5 energy err:14
            """);
        using NvmlSource source = Open(fake);
        Assert.Equal(new[] { "gpu:0000:01:00.0", "gpu:0000:03:00.0" }, source.Channels.Select(c => c.Resource.ToString()));
        Assert.Equal(new[] { 0, 2 }, source.Devices.Select(d => d.Index));
        Assert.Equal(new[]
        {
            "GPU 1: nvmlDeviceGetHandleByIndex_v2: GPU is lost (NVML_ERROR_GPU_IS_LOST)",
            "GPU 3: nvmlDeviceGetUUID: Insufficient Permissions (NVML_ERROR_NO_PERMISSION)",
            "GPU 4: no energy counter (Not Supported (NVML_ERROR_NOT_SUPPORTED)) and no power reading (Not Supported (NVML_ERROR_NOT_SUPPORTED))",
            "GPU 5: nvmlDeviceGetTotalEnergyConsumption: Corrupted infoROM (NVML_ERROR_CORRUPTED_INFOROM)",
        }, source.SkippedDevices);
        var (raw, ok) = Read(source, S);
        Assert.Equal(new ulong[] { 1000, 3000 }, raw);
        Assert.Equal(new[] { true, true }, ok);
    }

    [Fact]
    public void AGpuFailingDuringTheRunReportsAReadErrorWhileTheOthersContinue()
    {
        using var fake = new FakeNvml("dev 0 energy file:e0\ndev 1 energy file:e1\n");
        fake.Set("e0", 5000);
        fake.Set("e1", 7000);
        using NvmlSource source = Open(fake);
        Assert.Equal(new ulong[] { 5000, 7000 }, Read(source, S).Raw);

        fake.Set("e0", "err:15");
        fake.Set("e1", 7500);
        var (raw, ok) = Read(source, 2 * S);
        Assert.Equal(new[] { false, true }, ok);
        Assert.Equal(new ulong[] { 5000, 7500 }, raw);

        fake.Set("e0", 6000);
        (raw, ok) = Read(source, 3 * S);
        Assert.Equal(new[] { true, true }, ok);
        Assert.Equal(new ulong[] { 6000, 7500 }, raw);
    }

    [Fact]
    public void DriverNotLoadedIsTheQuietNoGpuCase()
    {
        using var fake = new FakeNvml("init 9\ndev 0 energy 1\n");
        Assert.Null(NvmlSource.TryOpen(fake.LibraryPath, out string status));
        Assert.Equal("no NVIDIA GPU: nvmlInit_v2 failed: Driver Not Loaded (NVML_ERROR_DRIVER_NOT_LOADED)", status);
        Assert.True(NvmlReturn.DriverNotLoaded.MeansNoGpu());
        Assert.False(NvmlReturn.NoPermission.MeansNoGpu());
    }

    [Fact]
    public void OtherInitFailuresAreReportedWithNvmlsText()
    {
        using var fake = new FakeNvml("init 18\n");
        Assert.Null(NvmlSource.TryOpen(fake.LibraryPath, out string status));
        Assert.Equal("no NVIDIA GPU: nvmlInit_v2 failed: RM has detected an NVML/RM version mismatch. (NVML_ERROR_LIB_RM_VERSION_MISMATCH)", status);
    }

    [Fact]
    public void ZeroDevicesIsTheQuietNoGpuCase()
    {
        using var fake = new FakeNvml("count 0\n");
        Assert.Null(NvmlSource.TryOpen(fake.LibraryPath, out string status));
        Assert.Equal("no NVIDIA GPU: NVML reports 0 devices", status);
    }

    [Fact]
    public void EveryGpuFailingMeansNoSource()
    {
        using var fake = new FakeNvml("dev 0 handle err:15\n");
        Assert.Null(NvmlSource.TryOpen(fake.LibraryPath, out string status));
        Assert.Equal("no NVIDIA GPU usable: GPU 0: nvmlDeviceGetHandleByIndex_v2: GPU is lost (NVML_ERROR_GPU_IS_LOST)", status);
    }

    [Fact]
    public void MissingLibraryIsTheQuietNoGpuCase()
    {
        using var dir = new TempTree();
        string path = dir.PathOf("libnvidia-ml.so.1");
        Assert.Null(NvmlSource.TryOpen(path, out string status));
        Assert.Equal($"no NVIDIA GPU: {path} not found (no NVIDIA driver)", status);
    }

    [Fact]
    public void ALibraryThatIsNotNvmlIsRefused()
    {
        using var dir = new TempTree();
        string c = dir.Write("empty.c", "int not_nvml(void) { return 0; }\n");
        string so = FakeNvml.CompileShared(c, dir.PathOf("libnvidia-ml.so.1"));
        Assert.Null(NvmlLibrary.TryLoad(so, out string error));
        Assert.Equal($"{so} lacks nvmlInit_v2 (driver too old or not NVML)", error);
        Assert.Null(NvmlSource.TryOpen(so, out string status));
        Assert.Equal($"no NVIDIA GPU: {so} lacks nvmlInit_v2 (driver too old or not NVML)", status);
    }

    [Fact]
    public void ConfigurationCanTurnTheSourceOffOrPointAtTheLibrary()
    {
        using var fake = new FakeNvml("dev 0 energy 42\n");
        var config = new AlumetConfig();
        config.Paths.NvmlLibrary = fake.LibraryPath;
        config.Sources.Nvml = "off";
        Assert.Null(NvmlSource.TryOpen(config, out string status));
        Assert.Equal("nvml: disabled by configuration (sources.nvml = off)", status);

        config.Sources.Nvml = "auto";
        using NvmlSource? source = NvmlSource.TryOpen(config, out status);
        Assert.NotNull(source);
        Assert.Equal("nvml: 1 GPU(s): 0 0000:10:00.0 Fake GPU (energy counter)", status);
        Assert.Equal(new ulong[] { 42 }, Read(source!, S).Raw);
    }

    [Fact]
    public void ScriptCanComeFromTheEnvironmentVariable()
    {
        // The compiled library has no script beside it, so it falls back to FAKE_NVML_SCRIPT. Tests using a copy with
        // a script beside it are unaffected by this process-wide variable.
        using var dir = new TempTree();
        string script = dir.Write("script", "dev 0 energy 777\ndev 1 energy 888\n");
        // .NET keeps its own copy of the environment on Unix: the C library's getenv only sees libc's setenv.
        Assert.Equal(0, setenv("FAKE_NVML_SCRIPT", script, 1));
        try
        {
            using NvmlSource? source = NvmlSource.TryOpen(FakeNvml.CompiledLibrary, out string status);
            Assert.NotNull(source);
            Assert.Equal(new ulong[] { 777, 888 }, Read(source!, S).Raw);
        }
        finally
        {
            unsetenv("FAKE_NVML_SCRIPT");
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", CharSet = System.Runtime.InteropServices.CharSet.Ansi)]
    private static extern int setenv(string name, string value, int overwrite);

    [System.Runtime.InteropServices.DllImport("libc", CharSet = System.Runtime.InteropServices.CharSet.Ansi)]
    private static extern int unsetenv(string name);

    [Fact]
    public void MigIsReportedAndTheWholeBoardIsMeasured()
    {
        using var fake = new FakeNvml("dev 0 mig 1\ndev 0 energy 10\ndev 1 mig 0\ndev 1 energy 20\n");
        using NvmlSource source = Open(fake);
        Assert.Equal(new[] { true, false }, source.Devices.Select(d => d.MigEnabled));
        Assert.Contains("gpu:0000:10:00.0 (Fake GPU) whole board as reported by NVML", source.Perimeter);
        Assert.Contains("MIG enabled: whole board, charged through the parent GPU", source.Perimeter);
    }

    [Fact]
    public void ReadsAllocateNothing()
    {
        using var fake = new FakeNvml("dev 0 energy 1\ndev 0 energy_rate_mw 250000\ndev 1 energy unsupported\ndev 1 instant 1234\ndev 2 energy unsupported\ndev 2 power 4321\n");
        using NvmlSource source = Open(fake);
        Span<ulong> raw = stackalloc ulong[3];
        Span<bool> ok = stackalloc bool[3];
        source.Read(raw, ok, 1);
        source.Read(raw, ok, 2);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) source.Read(raw, ok, 3 + i * 1_000_000L);
        long after = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal(0, after - before);
        Assert.Equal(new[] { true, true, true }, ok.ToArray());
    }

    [Fact]
    public void ReadsAfterDisposeReportFailureInsteadOfCallingUnloadedCode()
    {
        using var fake = new FakeNvml("dev 0 energy 5\n");
        NvmlSource source = Open(fake);
        source.Dispose();
        source.Dispose();
        var (_, ok) = Read(source, S);
        Assert.Equal(new[] { false }, ok);
    }
}

public class NvmlSlotTests
{
    [Fact]
    public void TheSlotPollsOnItsOwnThreadAtTheConfiguredRate()
    {
        using var fake = new FakeNvml("dev 0 energy 1\n");
        var config = new AlumetConfig();
        config.Paths.NvmlLibrary = fake.LibraryPath;
        config.Sampler.NvmlHz = 25;
        var slot = NvmlSlot.Create(config, out string status);
        Assert.NotNull(slot);
        using var source = slot!.Source;
        Assert.True(slot.OwnThread);
        Assert.Equal(25, slot.Hz);
        Assert.Equal("nvml", source.Name);

        config.Paths.PowercapRoot = fake.PathOf("no-powercap");
        using (var set = Alumet.Hpc.Jobs.SourceFactory.Create(config, NvmlSlot.Create))
        {
            Assert.Contains(set.Slots, s => s.Source.Name == "nvml" && s.OwnThread);
            var nvml = (NvmlSource)set.Slots.Single(s => s.Source.Name == "nvml").Source;
            Assert.Contains($"{nvml.Perimeter} at 25 Hz", set.Perimeter);
            Assert.Contains("gpu:0000:10:00.0", set.Perimeter);
        }

        config.Paths.NvmlLibrary = fake.PathOf("absent.so");
        Assert.Null(NvmlSlot.Create(config, out status));
        Assert.Equal($"no NVIDIA GPU: {fake.PathOf("absent.so")} not found (no NVIDIA driver)", status);
    }
}
