using System.Globalization;
using System.Runtime.InteropServices;
using Alumet.Hpc.Native;
using Alumet.Hpc.Tests.Outputs;

namespace Alumet.Hpc.Tests.Core;

/// <summary>
/// <see cref="Libc"/>'s one struct stat reader: what stat(2), lstat(2) and fstat(2) give on this machine against
/// coreutils' stat and .NET, and <see cref="Libc.DecodeStat"/> on hand-built buffers of both layouts it knows.
/// </summary>
public sealed class LibcStatTests
{
    private static readonly bool Root = Libc.getuid() == 0;

    /// <summary>What coreutils' stat says of <paramref name="path"/> (<paramref name="link"/>: of a symbolic link
    /// itself), in <see cref="Libc.FileStatus"/>'s fields.</summary>
    private static Libc.FileStatus CoreutilsStat(string path, bool link)
    {
        string[] args = link ? ["-c", "%d %i %f %h %u %g %.9Y %.9Z", path] : ["-L", "-c", "%d %i %f %h %u %g %.9Y %.9Z", path];
        var (code, output, err) = Report.TwoUsersInstallation.Run("/usr/bin/stat", args);
        Assert.True(code == 0, err);
        string[] f = output.Trim().Split(' ');
        return new Libc.FileStatus(ulong.Parse(f[0], CultureInfo.InvariantCulture), ulong.Parse(f[1], CultureInfo.InvariantCulture),
            uint.Parse(f[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture), ulong.Parse(f[3], CultureInfo.InvariantCulture),
            uint.Parse(f[4], CultureInfo.InvariantCulture), uint.Parse(f[5], CultureInfo.InvariantCulture), Ns(f[6]), Ns(f[7]));

        static long Ns(string seconds) =>
            long.Parse(seconds.Replace(".", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);
    }

    /// <summary>A regular file with two names, mode 0640, an mtime with a fraction of a second, and (as root) an owner
    /// and group that are neither root nor each other: every field differs from its neighbours.</summary>
    private static string MakeFile(TempDir tmp)
    {
        string file = tmp.Sub("file");
        File.WriteAllText(file, "0123456789");
        File.SetUnixFileMode(file, (UnixFileMode)0b110_100_000);
        File.SetLastWriteTimeUtc(file, new DateTime(2021, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1_234_567));
        File.CreateSymbolicLink(tmp.Sub("link"), file);
        Assert.Equal(0, link(file, tmp.Sub("second-name")));
        if (Root) Assert.Equal(0, Libc.chown(file, 4321, 4322));
        return file;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int link(string from, string to);

    [Fact]
    public void AFilesStatusIsWhatCoreutilsAndDotNetSay()
    {
        using var tmp = new TempDir();
        string file = MakeFile(tmp);
        var status = Libc.StatPath(file, out int errno);
        Assert.Equal(0, errno);
        Assert.Equal(CoreutilsStat(file, link: false), status);
        var s = status!.Value;
        Assert.True(s.IsRegular);
        Assert.False(s.IsDirectory || s.IsSymbolicLink);
        Assert.Equal(File.GetUnixFileMode(file), (UnixFileMode)(s.Mode & 0xFFF));
        Assert.Equal(2UL, s.Links);
        Assert.Equal(new DateTime(2021, 3, 4, 5, 6, 7, DateTimeKind.Utc).AddTicks(1_234_567), DateTime.UnixEpoch.AddTicks(s.MtimeNs / 100));
        Assert.Equal(1_614_834_367_123_456_700L, s.MtimeNs);
        if (Root) Assert.Equal((4321u, 4322u), s.Owner);
        else Assert.Equal(Libc.getuid(), s.Uid);
    }

    [Fact]
    public void AnOpenFilesStatusIsItsPathsAndTheFileNamedByALink()
    {
        using var tmp = new TempDir();
        string file = MakeFile(tmp);
        using var handle = File.OpenHandle(file);
        Assert.Equal(Libc.StatPath(file), Libc.StatFd(handle));
        Assert.NotNull(Libc.StatFd(handle));
        Assert.Equal(Libc.StatPath(file), Libc.StatPath(tmp.Sub("link"))); // stat follows the link
    }

    [Fact]
    public void ASymbolicLinksOwnStatusIsWhatCoreutilsSays()
    {
        using var tmp = new TempDir();
        string file = MakeFile(tmp);
        string linkPath = tmp.Sub("link");
        var s = Libc.StatLink(linkPath, out int errno);
        Assert.Equal(0, errno);
        Assert.Equal(CoreutilsStat(linkPath, link: true), s);
        Assert.True(s!.Value.IsSymbolicLink);
        Assert.NotEqual(Libc.StatPath(file)!.Value.Ino, s.Value.Ino);
        Assert.Equal(1UL, s.Value.Links);
    }

    [Fact]
    public void ADirectorysStatusIsWhatCoreutilsAndDotNetSay()
    {
        using var tmp = new TempDir();
        string dir = tmp.Sub("d");
        foreach (string child in new[] { "a", "b", "c" }) Directory.CreateDirectory(Path.Combine(dir, child));
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_000);
        var s = Libc.StatPath(dir);
        Assert.Equal(CoreutilsStat(dir, link: false), s);
        Assert.True(s!.Value.IsDirectory);
        Assert.Equal(File.GetUnixFileMode(dir), (UnixFileMode)(s.Value.Mode & 0xFFF));
        Assert.Equal(Libc.StatLink(dir), s);
    }

    [Fact]
    public void AFailedStatSaysItsErrno()
    {
        using var tmp = new TempDir();
        Assert.Null(Libc.StatPath(tmp.Sub("missing"), out int errno));
        Assert.Equal(Libc.ENOENT, errno);
        File.WriteAllText(tmp.Sub("f"), "");
        Assert.Null(Libc.StatLink(Path.Combine(tmp.Sub("f"), "below"), out errno));
        Assert.Equal(Libc.ENOTDIR, errno);
        Assert.Null(Libc.StatFd(-1, out errno));
        Assert.Equal(9, errno); // EBADF
    }

    /// <summary>asm-generic/stat.h's struct stat, field for field (glibc's generic bits/struct_stat.h on LP64, which
    /// aarch64 uses): C# lays it out as C does on LP64, so the offsets come from the header's order, not from the
    /// decoder's table.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Arm64Stat
    {
        public ulong Dev, Ino;
        public uint Mode, Nlink, Uid, Gid;
        public ulong Rdev, Pad1;
        public long Size;
        public int Blksize, Pad2;
        public long Blocks, Atime, AtimeNsec, Mtime, MtimeNsec, Ctime, CtimeNsec;
        public uint Unused4, Unused5;
    }

    /// <summary>glibc's x86-64 struct stat (bits/struct_stat.h, the __x86_64__ branch), field for field.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct X64Stat
    {
        public ulong Dev, Ino, Nlink;
        public uint Mode, Uid, Gid;
        public int Pad0;
        public ulong Rdev;
        public long Size, Blksize, Blocks, Atime, AtimeNsec, Mtime, MtimeNsec, Ctime, CtimeNsec;
        public long Reserved0, Reserved1, Reserved2;
    }

    private static readonly Libc.FileStatus Expected = new(Dev: 0x0000_0103, Ino: 0x0123_4567_89AB_CDEF, Mode: 0x81A4 /* 0100644 */,
        Links: 3, Uid: 1001, Gid: 1002, MtimeNs: 1_600_000_000_123_456_789, CtimeNs: 1_700_000_000_987_654_321);

    private static byte[] Bytes<T>(T value) where T : struct => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();

    [Fact]
    public void AnArm64StructStatIsDecodedFieldForField()
    {
        var buf = Bytes(new Arm64Stat
        {
            Dev = Expected.Dev, Ino = Expected.Ino, Mode = Expected.Mode, Nlink = (uint)Expected.Links, Uid = Expected.Uid, Gid = Expected.Gid,
            Rdev = 0xFFFF, Pad1 = 0xEEEE, Size = 4096, Blksize = 4096, Pad2 = -1, Blocks = 8,
            Atime = 1_500_000_000, AtimeNsec = 555,
            Mtime = Expected.MtimeNs / 1_000_000_000, MtimeNsec = Expected.MtimeNs % 1_000_000_000,
            Ctime = Expected.CtimeNs / 1_000_000_000, CtimeNsec = Expected.CtimeNs % 1_000_000_000,
            Unused4 = 0xDDDD, Unused5 = 0xCCCC,
        });
        Assert.Equal(128, buf.Length);
        Assert.Equal(Expected, Libc.DecodeStat(buf, Architecture.Arm64));
        // Read as x86-64's (what FileStatus and LinkStatus did on every ABI until 2026-12-03), the same bytes give a
        // link count of mode | nlink << 32, the uid for the mode, the gid for the uid and st_rdev's low half for the gid:
        // on arm64, root's own directories (uid 0: mode 0) were "not a directory" and its log_file refused.
        var asX64 = Libc.DecodeStat(buf, Architecture.X64)!.Value;
        Assert.Equal((0x81A4UL | 3UL << 32, 1001u, 1002u, 0xFFFFu), (asX64.Links, asX64.Mode, asX64.Uid, asX64.Gid));
    }

    [Fact]
    public void AnX64StructStatIsDecodedFieldForField()
    {
        var buf = Bytes(new X64Stat
        {
            Dev = Expected.Dev, Ino = Expected.Ino, Nlink = Expected.Links, Mode = Expected.Mode, Uid = Expected.Uid, Gid = Expected.Gid,
            Pad0 = -1, Rdev = 0xFFFF, Size = 4096, Blksize = 4096, Blocks = 8, Atime = 1_500_000_000, AtimeNsec = 555,
            Mtime = Expected.MtimeNs / 1_000_000_000, MtimeNsec = Expected.MtimeNs % 1_000_000_000,
            Ctime = Expected.CtimeNs / 1_000_000_000, CtimeNsec = Expected.CtimeNs % 1_000_000_000,
            Reserved0 = -1, Reserved1 = -1, Reserved2 = -1,
        });
        Assert.Equal(144, buf.Length);
        Assert.Equal(Expected, Libc.DecodeStat(buf, Architecture.X64));
    }

    [Fact]
    public void AnAbiWhoseStructStatIsNotKnownIsNotDecoded() =>
        Assert.Null(Libc.DecodeStat(new byte[256], Architecture.RiscV64));
}
