namespace Alumet.Hpc.Sources.Nvml;

/// <summary>NVML return codes (<c>nvmlReturn_t</c> in nvml.h).</summary>
public enum NvmlReturn
{
    Success = 0,
    Uninitialized = 1,
    InvalidArgument = 2,
    NotSupported = 3,
    NoPermission = 4,
    AlreadyInitialized = 5,
    NotFound = 6,
    InsufficientSize = 7,
    InsufficientPower = 8,
    DriverNotLoaded = 9,
    Timeout = 10,
    IrqIssue = 11,
    LibraryNotFound = 12,
    FunctionNotFound = 13,
    CorruptedInforom = 14,
    GpuIsLost = 15,
    ResetRequired = 16,
    OperatingSystem = 17,
    LibRmVersionMismatch = 18,
    InUse = 19,
    Memory = 20,
    NoData = 21,
    VgpuEccNotSupported = 22,
    InsufficientResources = 23,
    FreqNotSupported = 24,
    ArgumentVersionMismatch = 25,
    Deprecated = 26,
    NotReady = 27,
    GpuNotFound = 28,
    InvalidState = 29,
    Unknown = 999,
}

public static class NvmlReturns
{
    /// <summary>The C constant name, so a log line can be searched in NVIDIA's documentation.</summary>
    public static string ConstantName(this NvmlReturn rc) => rc switch
    {
        NvmlReturn.Success => "NVML_SUCCESS",
        NvmlReturn.Uninitialized => "NVML_ERROR_UNINITIALIZED",
        NvmlReturn.InvalidArgument => "NVML_ERROR_INVALID_ARGUMENT",
        NvmlReturn.NotSupported => "NVML_ERROR_NOT_SUPPORTED",
        NvmlReturn.NoPermission => "NVML_ERROR_NO_PERMISSION",
        NvmlReturn.AlreadyInitialized => "NVML_ERROR_ALREADY_INITIALIZED",
        NvmlReturn.NotFound => "NVML_ERROR_NOT_FOUND",
        NvmlReturn.InsufficientSize => "NVML_ERROR_INSUFFICIENT_SIZE",
        NvmlReturn.InsufficientPower => "NVML_ERROR_INSUFFICIENT_POWER",
        NvmlReturn.DriverNotLoaded => "NVML_ERROR_DRIVER_NOT_LOADED",
        NvmlReturn.Timeout => "NVML_ERROR_TIMEOUT",
        NvmlReturn.IrqIssue => "NVML_ERROR_IRQ_ISSUE",
        NvmlReturn.LibraryNotFound => "NVML_ERROR_LIBRARY_NOT_FOUND",
        NvmlReturn.FunctionNotFound => "NVML_ERROR_FUNCTION_NOT_FOUND",
        NvmlReturn.CorruptedInforom => "NVML_ERROR_CORRUPTED_INFOROM",
        NvmlReturn.GpuIsLost => "NVML_ERROR_GPU_IS_LOST",
        NvmlReturn.ResetRequired => "NVML_ERROR_RESET_REQUIRED",
        NvmlReturn.OperatingSystem => "NVML_ERROR_OPERATING_SYSTEM",
        NvmlReturn.LibRmVersionMismatch => "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
        NvmlReturn.InUse => "NVML_ERROR_IN_USE",
        NvmlReturn.Memory => "NVML_ERROR_MEMORY",
        NvmlReturn.NoData => "NVML_ERROR_NO_DATA",
        NvmlReturn.VgpuEccNotSupported => "NVML_ERROR_VGPU_ECC_NOT_SUPPORTED",
        NvmlReturn.InsufficientResources => "NVML_ERROR_INSUFFICIENT_RESOURCES",
        NvmlReturn.FreqNotSupported => "NVML_ERROR_FREQ_NOT_SUPPORTED",
        NvmlReturn.ArgumentVersionMismatch => "NVML_ERROR_ARGUMENT_VERSION_MISMATCH",
        NvmlReturn.Deprecated => "NVML_ERROR_DEPRECATED",
        NvmlReturn.NotReady => "NVML_ERROR_NOT_READY",
        NvmlReturn.GpuNotFound => "NVML_ERROR_GPU_NOT_FOUND",
        NvmlReturn.InvalidState => "NVML_ERROR_INVALID_STATE",
        NvmlReturn.Unknown => "NVML_ERROR_UNKNOWN",
        _ => $"nvmlReturn_t {(int)rc}",
    };

    /// <summary>Used when the library has no <c>nvmlErrorString</c> (or none is loaded): short English text.</summary>
    internal static string FallbackText(this NvmlReturn rc) => rc switch
    {
        NvmlReturn.Success => "Success",
        NvmlReturn.Uninitialized => "Uninitialized",
        NvmlReturn.InvalidArgument => "Invalid Argument",
        NvmlReturn.NotSupported => "Not Supported",
        NvmlReturn.NoPermission => "Insufficient Permissions",
        NvmlReturn.DriverNotLoaded => "Driver Not Loaded",
        NvmlReturn.LibraryNotFound => "NVML Shared Library Not Found",
        NvmlReturn.FunctionNotFound => "Function Not Found",
        NvmlReturn.GpuIsLost => "GPU is lost",
        NvmlReturn.LibRmVersionMismatch => "RM has detected an NVML/RM version mismatch",
        _ => "Unknown Error",
    };

    /// <summary>
    /// Whether an <c>nvmlInit_v2</c> failure just means "no usable NVIDIA GPU on this node", which is the normal
    /// state of a CPU-only node and must stay quiet (no warning in the logs of every job).
    /// </summary>
    public static bool MeansNoGpu(this NvmlReturn rc) =>
        rc is NvmlReturn.DriverNotLoaded or NvmlReturn.LibraryNotFound or NvmlReturn.GpuNotFound;
}
