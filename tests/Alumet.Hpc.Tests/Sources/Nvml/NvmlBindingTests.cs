using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Alumet.Hpc.Sources.Nvml;
using Alumet.Hpc.Tests.Fakes.Nvml;

namespace Alumet.Hpc.Tests.Sources.Nvml;

public class NvmlBindingTests
{
    [Fact]
    public void StructLayoutsMatchNvmlH()
    {
        // nvmlPciInfo_t: busIdLegacy[16], 5 x uint, busId[32].
        Assert.Equal(68, Unsafe.SizeOf<NvmlPciInfo>());
        Assert.Equal(16, (int)Marshal.OffsetOf<NvmlPciInfo>(nameof(NvmlPciInfo.Domain)));
        Assert.Equal(32, (int)Marshal.OffsetOf<NvmlPciInfo>(nameof(NvmlPciInfo.PciSubSystemId)));
        Assert.Equal(36, (int)Marshal.OffsetOf<NvmlPciInfo>(nameof(NvmlPciInfo.BusId)));
        // nvmlFieldValue_t: fieldId, scopeId, timestamp, latencyUsec, valueType, nvmlReturn, value (8-byte union).
        Assert.Equal(40, Unsafe.SizeOf<NvmlFieldValue>());
        Assert.Equal(8, (int)Marshal.OffsetOf<NvmlFieldValue>(nameof(NvmlFieldValue.TimestampUs)));
        Assert.Equal(24, (int)Marshal.OffsetOf<NvmlFieldValue>(nameof(NvmlFieldValue.ValueType)));
        Assert.Equal(28, (int)Marshal.OffsetOf<NvmlFieldValue>(nameof(NvmlFieldValue.Return)));
        Assert.Equal(32, (int)Marshal.OffsetOf<NvmlFieldValue>(nameof(NvmlFieldValue.UIntValue)));
        Assert.Equal(186u, NvmlLibrary.FieldPowerInstant);
    }

    [Fact]
    public void FieldValuesAreDecodedWhateverTheValueType()
    {
        ulong v;
        var fv = new NvmlFieldValue { ValueType = 1, ULongValue = 0xFFFF_FFFF_0000_0000 | 250_000 };
        Assert.True(fv.TryGetUnsigned(out v)); Assert.Equal(250_000UL, v);      // only the low 32 bits are the uint
        fv = new NvmlFieldValue { ValueType = 3, ULongValue = 1UL << 40 };
        Assert.True(fv.TryGetUnsigned(out v)); Assert.Equal(1UL << 40, v);
        fv = new NvmlFieldValue { ValueType = 0, DoubleValue = 1234.6 };
        Assert.True(fv.TryGetUnsigned(out v)); Assert.Equal(1235UL, v);
        fv = new NvmlFieldValue { ValueType = 5, IntValue = -1 };
        Assert.False(fv.TryGetUnsigned(out _));
        fv = new NvmlFieldValue { ValueType = 6, ULongValue = 0xABCD_0000_0000_1234 };
        Assert.True(fv.TryGetUnsigned(out v)); Assert.Equal(0x1234UL, v);
        fv = new NvmlFieldValue { ValueType = 7 };
        Assert.False(fv.TryGetUnsigned(out _));
    }

    [Fact]
    public void ErrorsAreDescribedWithNvmlsTextAndTheConstant()
    {
        using var fake = new FakeNvml("");
        using NvmlLibrary lib = NvmlLibrary.TryLoad(fake.LibraryPath, out string error)!;
        Assert.Equal("", error);
        Assert.Equal("GPU is lost (NVML_ERROR_GPU_IS_LOST)", lib.Describe(NvmlReturn.GpuIsLost));
        Assert.Equal("Driver Not Loaded (NVML_ERROR_DRIVER_NOT_LOADED)", lib.Describe(NvmlReturn.DriverNotLoaded));
        Assert.Equal("Not Supported", lib.ErrorString(NvmlReturn.NotSupported));
        Assert.Equal("Unknown Error (nvmlReturn_t 12345)", lib.Describe((NvmlReturn)12345));
        // Before init every device call fails cleanly.
        Assert.Equal(NvmlReturn.Uninitialized, lib.GetCount(out _));
        Assert.Equal(NvmlReturn.Success, lib.Init());
        Assert.Equal(NvmlReturn.Success, lib.GetCount(out uint count));
        Assert.Equal(0u, count);
        Assert.Equal(NvmlReturn.Success, lib.Shutdown());
        lib.Dispose();
        // After unloading, the built-in text is used and nothing jumps into the unloaded library.
        Assert.Equal("GPU is lost (NVML_ERROR_GPU_IS_LOST)", lib.Describe(NvmlReturn.GpuIsLost));
        Assert.Equal(NvmlReturn.Uninitialized, lib.Init());
    }

    [Fact]
    public void TheRawBindingReadsEachQuery()
    {
        using var fake = new FakeNvml("""
            dev 0 uuid GPU-deadbeef-0000-0000-0000-000000000001
            dev 0 bus_id 00000000:C1:00.0
            dev 0 name NVIDIA L40S
            dev 0 minor 7
            dev 0 mig 1
            dev 0 energy 9000000000000
            dev 0 instant 71234
            dev 0 power 70000
            """);
        using NvmlLibrary lib = NvmlLibrary.TryLoad(fake.LibraryPath, out _)!;
        Assert.Equal(NvmlReturn.Success, lib.Init());
        Assert.Equal(NvmlReturn.Success, lib.GetHandleByIndex(0, out IntPtr h));
        Assert.Equal(NvmlReturn.InvalidArgument, lib.GetHandleByIndex(1, out _));
        Assert.Equal(NvmlReturn.Success, lib.GetUuid(h, out string uuid));
        Assert.Equal("GPU-deadbeef-0000-0000-0000-000000000001", uuid);
        Assert.Equal(NvmlReturn.Success, lib.GetName(h, out string name));
        Assert.Equal("NVIDIA L40S", name);
        Assert.Equal(NvmlReturn.Success, lib.GetPciInfo(h, out NvmlPciInfo pci));
        Assert.Equal((0u, 0xC1u, 0u), (pci.Domain, pci.Bus, pci.Device));
        Assert.Equal(NvmlReturn.Success, lib.GetBusId(h, out string busId));
        Assert.Equal("0000:c1:00.0", busId);
        Assert.Equal(NvmlReturn.Success, lib.GetMinorNumber(h, out uint minor));
        Assert.Equal(7u, minor);
        Assert.Equal(NvmlReturn.Success, lib.GetMigMode(h, out uint cur, out uint pending));
        Assert.Equal((1u, 1u), (cur, pending));
        Assert.Equal(NvmlReturn.Success, lib.GetTotalEnergyConsumption(h, out ulong mj));
        Assert.Equal(9_000_000_000_000UL, mj);
        Assert.Equal(NvmlReturn.Success, lib.GetInstantPower(h, out uint instant));
        Assert.Equal(71_234u, instant);
        Assert.Equal(NvmlReturn.Success, lib.GetPowerUsage(h, out uint avg));
        Assert.Equal(70_000u, avg);
        Assert.Equal(NvmlReturn.Success, lib.Shutdown());
    }

    [Theory]
    [InlineData("00000000:3B:00.0", "0000:3b:00.0")]
    [InlineData("0000:3B:00.0", "0000:3b:00.0")]
    [InlineData("3b:00.0", "0000:3b:00.0")]
    [InlineData(" 0001:86:1f.7 ", "0001:86:1f.7")]
    [InlineData("00010000:01:00.0", "00010000:01:00.0")] // domains above 0xffff (VMD) keep 8 digits
    public void BusIdsAreNormalizedToTheSysfsForm(string input, string expected)
    {
        Assert.True(GpuBusId.TryNormalize(input, out string id));
        Assert.Equal(expected, id);
    }

    [Theory]
    [InlineData("GPU-1234")]
    [InlineData("0000:3b:20.0")]  // device > 31
    [InlineData("0000:3b:00.8")]  // function > 7
    [InlineData("0000:3b:00")]
    [InlineData("")]
    public void NonBusIdsAreRejected(string input) => Assert.False(GpuBusId.TryNormalize(input, out _));
}
