using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Alumet.Hpc.Sources.Nvml;

/// <summary><c>nvmlPciInfo_t</c> as filled by <c>nvmlDeviceGetPciInfo_v3</c> (68 bytes; nvml.h).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct NvmlPciInfo
{
    /// <summary>Legacy "domain:bus:device.function" with a 4-digit domain (NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE = 16).</summary>
    public fixed byte BusIdLegacy[16];
    public uint Domain;
    public uint Bus;
    public uint Device;
    /// <summary>16-bit device id (high half) and 16-bit vendor id (low half).</summary>
    public uint PciDeviceId;
    public uint PciSubSystemId;
    /// <summary>"domain:bus:device.function" with an 8-digit domain (NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE = 32).</summary>
    public fixed byte BusId[32];
}

/// <summary>
/// <c>nvmlFieldValue_t</c> (40 bytes; nvml.h): fieldId, scopeId, timestamp (µs since 1970), latencyUsec,
/// valueType, nvmlReturn, then the 8-byte <c>nvmlValue_t</c> union.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct NvmlFieldValue
{
    [FieldOffset(0)] public uint FieldId;
    [FieldOffset(4)] public uint ScopeId;
    [FieldOffset(8)] public long TimestampUs;
    [FieldOffset(16)] public long LatencyUs;
    [FieldOffset(24)] public int ValueType;
    [FieldOffset(28)] public int Return;
    [FieldOffset(32)] public double DoubleValue;
    [FieldOffset(32)] public uint UIntValue;
    [FieldOffset(32)] public ulong ULongValue;
    [FieldOffset(32)] public long LongValue;
    [FieldOffset(32)] public int IntValue;
    [FieldOffset(32)] public ushort UShortValue;

    /// <summary>The value as an unsigned integer whatever <c>nvmlValueType_t</c> the driver chose; false when negative or unknown.</summary>
    public readonly bool TryGetUnsigned(out ulong value)
    {
        switch (ValueType)
        {
            case 0: value = DoubleValue >= 0 ? (ulong)Math.Round(DoubleValue) : 0; return DoubleValue >= 0; // NVML_VALUE_TYPE_DOUBLE
            case 1: value = UIntValue; return true;                                        // UNSIGNED_INT
            case 2: case 3: value = ULongValue; return true;                              // UNSIGNED_LONG (64-bit on Linux), UNSIGNED_LONG_LONG
            case 4: value = (ulong)LongValue; return LongValue >= 0;                       // SIGNED_LONG_LONG
            case 5: value = (ulong)IntValue; return IntValue >= 0;                         // SIGNED_INT
            case 6: value = UShortValue; return true;                                      // UNSIGNED_SHORT
            default: value = 0; return false;
        }
    }
}

/// <summary>
/// The NVML subset Alumet.Hpc needs, bound at run time: <see cref="NativeLibrary.TryLoad(string, out IntPtr)"/> plus
/// unmanaged function pointers, so one binary (NativeAOT included) runs on CPU-only nodes, where the library is
/// absent, and on GPU nodes. No <c>DllImport</c>, no link-time dependency on the driver.
/// Calls are not synchronized here: NVML itself serializes on a driver lock, so the sampler polls GPUs from one
/// dedicated thread.
/// </summary>
public sealed unsafe class NvmlLibrary : IDisposable
{
    /// <summary><c>NVML_FI_DEV_POWER_INSTANT</c>: instant board power, mW (<c>nvmlDeviceGetPowerUsage</c> is a 1 s average on Ampere and newer).</summary>
    public const uint FieldPowerInstant = 186;

    private const int UuidBufferSize = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE
    private const int NameBufferSize = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE

    private IntPtr _handle;
    private readonly delegate* unmanaged<int> _init;
    private readonly delegate* unmanaged<int> _shutdown;
    private readonly delegate* unmanaged<int, byte*> _errorString;
    private readonly delegate* unmanaged<uint*, int> _getCount;
    private readonly delegate* unmanaged<uint, IntPtr*, int> _getHandleByIndex;
    private readonly delegate* unmanaged<IntPtr, byte*, uint, int> _getUuid;
    private readonly delegate* unmanaged<IntPtr, byte*, uint, int> _getName;
    private readonly delegate* unmanaged<IntPtr, NvmlPciInfo*, int> _getPciInfo;
    private readonly delegate* unmanaged<IntPtr, uint*, int> _getMinorNumber;
    private readonly delegate* unmanaged<IntPtr, uint*, uint*, int> _getMigMode;
    private readonly delegate* unmanaged<IntPtr, ulong*, int> _getTotalEnergy;
    private readonly delegate* unmanaged<IntPtr, int, NvmlFieldValue*, int> _getFieldValues;
    private readonly delegate* unmanaged<IntPtr, uint*, int> _getPowerUsage;

    private NvmlLibrary(IntPtr handle)
    {
        _handle = handle;
        _init = (delegate* unmanaged<int>)Export("nvmlInit_v2");
        _shutdown = (delegate* unmanaged<int>)Export("nvmlShutdown");
        _errorString = (delegate* unmanaged<int, byte*>)Export("nvmlErrorString");
        _getCount = (delegate* unmanaged<uint*, int>)Export("nvmlDeviceGetCount_v2");
        _getHandleByIndex = (delegate* unmanaged<uint, IntPtr*, int>)Export("nvmlDeviceGetHandleByIndex_v2");
        _getUuid = (delegate* unmanaged<IntPtr, byte*, uint, int>)Export("nvmlDeviceGetUUID");
        _getName = (delegate* unmanaged<IntPtr, byte*, uint, int>)Export("nvmlDeviceGetName");
        _getPciInfo = (delegate* unmanaged<IntPtr, NvmlPciInfo*, int>)Export("nvmlDeviceGetPciInfo_v3");
        _getMinorNumber = (delegate* unmanaged<IntPtr, uint*, int>)Export("nvmlDeviceGetMinorNumber");
        _getMigMode = (delegate* unmanaged<IntPtr, uint*, uint*, int>)Export("nvmlDeviceGetMigMode");
        _getTotalEnergy = (delegate* unmanaged<IntPtr, ulong*, int>)Export("nvmlDeviceGetTotalEnergyConsumption");
        _getFieldValues = (delegate* unmanaged<IntPtr, int, NvmlFieldValue*, int>)Export("nvmlDeviceGetFieldValues");
        _getPowerUsage = (delegate* unmanaged<IntPtr, uint*, int>)Export("nvmlDeviceGetPowerUsage");
    }

    /// <summary>False after <see cref="Dispose"/>: every call then returns Uninitialized instead of jumping into unloaded code.</summary>
    public bool Loaded => _handle != IntPtr.Zero;

    private IntPtr Export(string name) => NativeLibrary.TryGetExport(_handle, name, out IntPtr p) ? p : IntPtr.Zero;

    /// <summary>The library path or name given to <see cref="TryLoad"/>.</summary>
    public string Path { get; private init; } = "";

    /// <summary>Whether the library exports <c>nvmlDeviceGetTotalEnergyConsumption</c> (drivers older than Volta support lack it).</summary>
    public bool HasEnergyCounter => _getTotalEnergy != null;
    public bool HasFieldValues => _getFieldValues != null;
    public bool HasPowerUsage => _getPowerUsage != null;

    /// <summary>
    /// Loads the library and resolves its exports. Returns null when the library cannot be loaded or lacks a
    /// required export; <paramref name="error"/> then says why (a missing library is the normal CPU-only case).
    /// </summary>
    /// <param name="path">A file path, or a bare soname searched like dlopen does (<c>libnvidia-ml.so.1</c>).</param>
    public static NvmlLibrary? TryLoad(string path, out string error)
    {
        if (!NativeLibrary.TryLoad(path, out IntPtr handle))
        {
            error = $"{path} not found (no NVIDIA driver)";
            return null;
        }

        var lib = new NvmlLibrary(handle) { Path = path };
        string? missing =
            lib._init == null ? "nvmlInit_v2" :
            lib._shutdown == null ? "nvmlShutdown" :
            lib._getCount == null ? "nvmlDeviceGetCount_v2" :
            lib._getHandleByIndex == null ? "nvmlDeviceGetHandleByIndex_v2" :
            lib._getUuid == null ? "nvmlDeviceGetUUID" :
            lib._getName == null ? "nvmlDeviceGetName" :
            lib._getPciInfo == null ? "nvmlDeviceGetPciInfo_v3" : null;
        if (missing is not null)
        {
            lib.Dispose();
            error = $"{path} lacks {missing} (driver too old or not NVML)";
            return null;
        }

        error = "";
        return lib;
    }

    /// <summary>NVML's own text for <paramref name="rc"/> (<c>nvmlErrorString</c>), or a built-in English text.</summary>
    public string ErrorString(NvmlReturn rc)
    {
        if (_errorString != null && _handle != IntPtr.Zero)
        {
            byte* text = _errorString((int)rc);
            if (text != null) return Marshal.PtrToStringUTF8((IntPtr)text) ?? rc.FallbackText();
        }
        return rc.FallbackText();
    }

    /// <summary>"GPU is lost (NVML_ERROR_GPU_IS_LOST)": NVML's text plus the constant, for log lines.</summary>
    public string Describe(NvmlReturn rc) => $"{ErrorString(rc)} ({rc.ConstantName()})";

    public NvmlReturn Init() => Loaded ? (NvmlReturn)_init() : NvmlReturn.Uninitialized;

    public NvmlReturn Shutdown() => Loaded ? (NvmlReturn)_shutdown() : NvmlReturn.Uninitialized;

    public NvmlReturn GetCount(out uint count)
    {
        uint c = 0;
        var rc = (NvmlReturn)_getCount(&c);
        count = c;
        return rc;
    }

    public NvmlReturn GetHandleByIndex(uint index, out IntPtr device)
    {
        IntPtr d = IntPtr.Zero;
        var rc = (NvmlReturn)_getHandleByIndex(index, &d);
        device = d;
        return rc;
    }

    public NvmlReturn GetUuid(IntPtr device, out string uuid)
    {
        byte* buf = stackalloc byte[UuidBufferSize];
        var rc = (NvmlReturn)_getUuid(device, buf, UuidBufferSize);
        uuid = rc == NvmlReturn.Success ? CString(buf, UuidBufferSize) : "";
        return rc;
    }

    public NvmlReturn GetName(IntPtr device, out string name)
    {
        byte* buf = stackalloc byte[NameBufferSize];
        var rc = (NvmlReturn)_getName(device, buf, NameBufferSize);
        name = rc == NvmlReturn.Success ? CString(buf, NameBufferSize) : "";
        return rc;
    }

    public NvmlReturn GetPciInfo(IntPtr device, out NvmlPciInfo info)
    {
        NvmlPciInfo p = default;
        var rc = (NvmlReturn)_getPciInfo(device, &p);
        info = p;
        return rc;
    }

    /// <summary>The PCI bus id in the sysfs form (<c>0000:3b:00.0</c>), which is also what Slurm and <c>lspci -D</c> print.</summary>
    public NvmlReturn GetBusId(IntPtr device, out string busId)
    {
        var rc = GetPciInfo(device, out NvmlPciInfo info);
        busId = rc == NvmlReturn.Success ? GpuBusId.Normalize(CString(info.BusId, 32)) : "";
        return rc;
    }

    /// <summary>The N of <c>/dev/nvidiaN</c>; optional export (returns FunctionNotFound when absent).</summary>
    public NvmlReturn GetMinorNumber(IntPtr device, out uint minor)
    {
        uint m = 0;
        var rc = _getMinorNumber == null ? NvmlReturn.FunctionNotFound : (NvmlReturn)_getMinorNumber(device, &m);
        minor = m;
        return rc;
    }

    /// <summary>Current and pending MIG mode (1 = enabled); optional export.</summary>
    public NvmlReturn GetMigMode(IntPtr device, out uint current, out uint pending)
    {
        uint c = 0, p = 0;
        var rc = _getMigMode == null ? NvmlReturn.FunctionNotFound : (NvmlReturn)_getMigMode(device, &c, &p);
        current = c;
        pending = p;
        return rc;
    }

    /// <summary>Energy since the driver was loaded, mJ, 64-bit (Volta and newer); refreshes every 20-100 ms.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public NvmlReturn GetTotalEnergyConsumption(IntPtr device, out ulong millijoules)
    {
        ulong e = 0;
        var rc = _getTotalEnergy == null ? NvmlReturn.FunctionNotFound : (NvmlReturn)_getTotalEnergy(device, &e);
        millijoules = e;
        return rc;
    }

    /// <summary>Board power, mW (a 1 s average on Ampere non-GA100 and newer).</summary>
    public NvmlReturn GetPowerUsage(IntPtr device, out uint milliwatts)
    {
        uint p = 0;
        var rc = _getPowerUsage == null ? NvmlReturn.FunctionNotFound : (NvmlReturn)_getPowerUsage(device, &p);
        milliwatts = p;
        return rc;
    }

    /// <summary>
    /// Instant board power through <c>nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)</c>, mW. The call itself
    /// succeeds even when the field is unsupported; the per-field return code is what is returned here.
    /// </summary>
    public NvmlReturn GetInstantPower(IntPtr device, out uint milliwatts)
    {
        milliwatts = 0;
        if (_getFieldValues == null) return NvmlReturn.FunctionNotFound;
        NvmlFieldValue fv = default;
        fv.FieldId = FieldPowerInstant;
        var rc = (NvmlReturn)_getFieldValues(device, 1, &fv);
        if (rc != NvmlReturn.Success) return rc;
        if (fv.Return != 0) return (NvmlReturn)fv.Return;
        if (!fv.TryGetUnsigned(out ulong v) || v > uint.MaxValue) return NvmlReturn.Unknown;
        milliwatts = (uint)v;
        return NvmlReturn.Success;
    }

    private static string CString(byte* buf, int size)
    {
        int n = 0;
        while (n < size && buf[n] != 0) n++;
        return System.Text.Encoding.UTF8.GetString(buf, n);
    }

    /// <summary>Unloads the library. Call <see cref="Shutdown"/> first for each successful <see cref="Init"/>.</summary>
    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        NativeLibrary.Free(_handle);
        _handle = IntPtr.Zero;
    }
}
