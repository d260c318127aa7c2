using System.Runtime.InteropServices;
using System.Text;

namespace Alumet.Hpc.Sources.Bmc;

/// <summary>
/// The libfreeipmi subset the BMC source needs (api/ipmi-api.h), bound at run time like NVML: <see cref="NativeLibrary"/>
/// plus unmanaged function pointers, so one NativeAOT binary runs on nodes with and without FreeIPMI installed.
/// One context = one IPMI session (LAN, IPMI 2.0 / RMCP+) or one in-band device (<c>/dev/ipmi0</c>); requests go
/// through <c>ipmi_cmd_raw</c> (request byte 0 = command; response byte 0 = command, byte 1 = completion code).
/// A context is not thread-safe: the BMC reader uses it from its one thread.
/// </summary>
public sealed unsafe class FreeIpmiLibrary : IDisposable
{
    public const byte PrivilegeUser = 0x02, PrivilegeOperator = 0x03, PrivilegeAdmin = 0x04;
    /// <summary>IPMI_WORKAROUND_FLAGS_OUTOFBAND_2_0_OPEN_SESSION_PRIVILEGE: BMCs (ipmi_sim among them) that reject
    /// the privilege asked in the RMCP+ Open Session request; FreeIPMI's tools call it <c>-W opensesspriv</c>.</summary>
    public const uint WorkaroundOpenSessionPrivilege = 0x10;
    private const int DeviceOpenIpmi = 7; // IPMI_DEVICE_OPENIPMI: the kernel's /dev/ipmi0

    private IntPtr _handle;
    private readonly delegate* unmanaged<IntPtr> _create;
    private readonly delegate* unmanaged<IntPtr, void> _destroy;
    private readonly delegate* unmanaged<IntPtr, int> _close;
    private readonly delegate* unmanaged<IntPtr, byte*> _errorMessage;
    private readonly delegate* unmanaged<IntPtr, byte*, byte*, byte*, byte*, uint, byte, byte, uint, uint, uint, uint, int> _openLan20;
    private readonly delegate* unmanaged<IntPtr, int, int, ushort, byte, byte*, uint, uint, int> _openInband;
    private readonly delegate* unmanaged<IntPtr, byte, byte, byte*, uint, byte*, uint, int> _cmdRaw;

    private FreeIpmiLibrary(IntPtr handle)
    {
        _handle = handle;
        _create = (delegate* unmanaged<IntPtr>)NativeLibrary.GetExport(handle, "ipmi_ctx_create");
        _destroy = (delegate* unmanaged<IntPtr, void>)NativeLibrary.GetExport(handle, "ipmi_ctx_destroy");
        _close = (delegate* unmanaged<IntPtr, int>)NativeLibrary.GetExport(handle, "ipmi_ctx_close");
        _errorMessage = (delegate* unmanaged<IntPtr, byte*>)NativeLibrary.GetExport(handle, "ipmi_ctx_errormsg");
        _openLan20 = (delegate* unmanaged<IntPtr, byte*, byte*, byte*, byte*, uint, byte, byte, uint, uint, uint, uint, int>)
            NativeLibrary.GetExport(handle, "ipmi_ctx_open_outofband_2_0");
        _openInband = (delegate* unmanaged<IntPtr, int, int, ushort, byte, byte*, uint, uint, int>)
            NativeLibrary.GetExport(handle, "ipmi_ctx_open_inband");
        _cmdRaw = (delegate* unmanaged<IntPtr, byte, byte, byte*, uint, byte*, uint, int>)NativeLibrary.GetExport(handle, "ipmi_cmd_raw");
    }

    /// <summary>Loads libfreeipmi; null (with a sentence in <paramref name="error"/>) when absent or too old.</summary>
    public static FreeIpmiLibrary? TryLoad(string path, out string error)
    {
        if (!NativeLibrary.TryLoad(path, out IntPtr h))
        {
            error = $"cannot load {path} (install FreeIPMI's library: apt-get install libfreeipmi17, or set [bmc] freeipmi_library)";
            return null;
        }
        try
        {
            error = "";
            return new FreeIpmiLibrary(h);
        }
        catch (EntryPointNotFoundException e)
        {
            NativeLibrary.Free(h);
            error = $"{path} lacks {e.Message}: FreeIPMI 1.1 or newer is needed";
            return null;
        }
    }

    /// <summary>An IPMI 2.0 LAN session to <paramref name="host"/> ("10.0.0.5" or "127.0.0.1:623"). Timeouts in ms.</summary>
    public IntPtr OpenLan(string host, string user, string password, byte privilege, byte cipherSuite,
                          uint sessionTimeoutMs, uint retransmissionTimeoutMs, uint workarounds, out string error)
    {
        IntPtr ctx = _create();
        if (ctx == IntPtr.Zero) { error = "ipmi_ctx_create failed (out of memory)"; return IntPtr.Zero; }
        byte[] h = Utf8Z(host), u = Utf8Z(user), p = Utf8Z(password);
        int rc;
        fixed (byte* ph = h, pu = u, pp = p)
            rc = _openLan20(ctx, ph, user.Length == 0 ? null : pu, password.Length == 0 ? null : pp, null, 0,
                            privilege, cipherSuite, sessionTimeoutMs, retransmissionTimeoutMs, workarounds, 0);
        return Opened(ctx, rc, out error);
    }

    /// <summary>The local BMC through the kernel's IPMI driver (<paramref name="device"/>, e.g. /dev/ipmi0).</summary>
    public IntPtr OpenInband(string device, out string error)
    {
        IntPtr ctx = _create();
        if (ctx == IntPtr.Zero) { error = "ipmi_ctx_create failed (out of memory)"; return IntPtr.Zero; }
        byte[] d = Utf8Z(device);
        int rc;
        fixed (byte* pd = d) rc = _openInband(ctx, DeviceOpenIpmi, 0, 0, 0, pd, 0, 0);
        return Opened(ctx, rc, out error);
    }

    /// <summary>The context when its open call succeeded; else destroyed, with FreeIPMI's message.</summary>
    private IntPtr Opened(IntPtr ctx, int rc, out string error)
    {
        if (rc >= 0) { error = ""; return ctx; }
        error = Message(ctx);
        _destroy(ctx);
        return IntPtr.Zero;
    }

    /// <summary>
    /// One raw request. <paramref name="request"/> = command byte then data; returns the response length (byte 0 =
    /// command, 1 = completion code) or -1 with <paramref name="error"/> set (timeout, session lost, ...).
    /// </summary>
    public int Raw(IntPtr ctx, byte netFn, ReadOnlySpan<byte> request, Span<byte> response, out string? error)
    {
        int n;
        fixed (byte* rq = request, rs = response)
            n = _cmdRaw(ctx, 0, netFn, rq, (uint)request.Length, rs, (uint)response.Length);
        error = n < 0 ? Message(ctx) : null;
        return n;
    }

    public void Close(IntPtr ctx)
    {
        if (ctx == IntPtr.Zero) return;
        _close(ctx);
        _destroy(ctx);
    }

    private string Message(IntPtr ctx)
    {
        byte* m = _errorMessage(ctx);
        return m == null ? "unknown FreeIPMI error" : Marshal.PtrToStringUTF8((IntPtr)m) ?? "unknown FreeIPMI error";
    }

    private static byte[] Utf8Z(string s)
    {
        var b = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Encoding.UTF8.GetBytes(s, b);
        return b;
    }

    public void Dispose()
    {
        if (_handle == IntPtr.Zero) return;
        NativeLibrary.Free(_handle);
        _handle = IntPtr.Zero;
    }
}
