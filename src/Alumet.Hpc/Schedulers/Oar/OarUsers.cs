using System.Runtime.InteropServices;

namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>
/// User name → uid through NSS (getpwnam_r), so LDAP/sssd users resolve like local ones.
/// OAR passes only the user name to its hooks; the uid names OAR 3's v2 slices and the accounting row.
/// </summary>
internal static partial class OarUsers
{
    [StructLayout(LayoutKind.Sequential)]
    private struct Passwd
    {
        public IntPtr Name, Password;
        public uint Uid, Gid;
        public IntPtr Gecos, Dir, Shell;
    }

    [LibraryImport("libc", EntryPoint = "getpwnam_r", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int GetPwNamR(string name, Passwd* pwd, byte* buf, nuint buflen, Passwd** result);

    /// <summary>The user's uid, or -1 when NSS does not know the user.</summary>
    public static unsafe int Uid(string user)
    {
        try
        {
            for (int size = 4096; size <= 1 << 20; size *= 4)
            {
                byte[] buffer = new byte[size];
                Passwd pwd;
                Passwd* result = null;
                int rc;
                fixed (byte* b = buffer) rc = GetPwNamR(user, &pwd, b, (nuint)size, &result);
                if (rc == 34 /* ERANGE */) continue;
                return rc == 0 && result != null && pwd.Uid <= int.MaxValue ? (int)pwd.Uid : -1;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
        return -1;
    }
}
