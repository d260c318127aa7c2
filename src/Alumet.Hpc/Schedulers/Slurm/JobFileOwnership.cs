using Alumet.Hpc.Native;

namespace Alumet.Hpc.Schedulers.Slurm;

/// <summary>
/// Gives a job's output file to the job's user: owner uid:gid, mode 0400. The user reads their own data;
/// other users cannot (the file holds their job's power profile); root and report admins read everything.
/// </summary>
internal static class JobFileOwnership
{
    public const UnixFileMode Mode = UnixFileMode.UserRead;

    /// <returns>A log fragment; never throws.</returns>
    public static string GiveToUser(string path, int uid, int gid)
    {
        try
        {
            if (!File.Exists(path)) return $"no file to give to uid {uid} at {path}";
            // data_dir is root's; a link there is not ours to follow (chown and chmod would follow it).
            if (new FileInfo(path).LinkTarget is not null) return $"{path} is a symbolic link: ownership left alone";
            // Mode first: between chown and chmod the file would otherwise be the user's with the old mode.
            File.SetUnixFileMode(path, Mode);
            if (Libc.chown(path, uid, gid) != 0)
                return $"chown {uid}:{gid} {path} failed (errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()})";
            return $"{path} given to {uid}:{gid} mode 0400";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot set ownership of {path}: {e.Message}";
        }
    }
}
