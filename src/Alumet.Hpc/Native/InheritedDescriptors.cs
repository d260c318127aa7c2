namespace Alumet.Hpc.Native;

/// <summary>
/// The descriptors this process inherited without close-on-exec (everything .NET opens has it). A hook runs under
/// slurmd, OAR or a user's shell, which can leave such descriptors open (lock files, sockets, pipes); a detached
/// node sampler started from the hook would hold them for its whole life: a flock never released, a pipe whose reader
/// waits for EOF. <see cref="Hide"/> marks them close-on-exec for one spawn and gives them back afterwards, because
/// the same process may later start a command that must inherit them (<c>exec</c>'s user command).
/// </summary>
internal static class InheritedDescriptors
{
    /// <summary>Marks every descriptor above stderr close-on-exec; disposing clears the mark on those it set.</summary>
    public static Hidden Hide()
    {
        var marked = new List<(int Fd, ulong Dev, ulong Ino)>();
        foreach (string entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out int fd) || fd <= 2) continue;
            int flags = Libc.fcntl(fd, Libc.F_GETFD, 0);
            // -1: the listing's own descriptor, closed by now.
            if (flags < 0 || (flags & Libc.FD_CLOEXEC) != 0) continue;
            if (Identity(fd) is { } id && Libc.fcntl(fd, Libc.F_SETFD, flags | Libc.FD_CLOEXEC) == 0) marked.Add((fd, id.Dev, id.Ino));
        }
        return new Hidden(marked);
    }

    /// <summary>st_dev and st_ino: the same descriptor number may meanwhile name another file, opened by another thread.</summary>
    private static (ulong Dev, ulong Ino)? Identity(int fd) => Libc.StatFd(fd)?.Id;

    public readonly struct Hidden(List<(int Fd, ulong Dev, ulong Ino)> marked) : IDisposable
    {
        public void Dispose()
        {
            foreach (var (fd, dev, ino) in marked)
            {
                if (Identity(fd) != (dev, ino)) continue;
                int flags = Libc.fcntl(fd, Libc.F_GETFD, 0);
                if (flags >= 0) Libc.fcntl(fd, Libc.F_SETFD, flags & ~Libc.FD_CLOEXEC);
            }
        }
    }
}
