using System.Net.Sockets;
using System.Text;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Core;

/// <summary>
/// Line-oriented log for hooks and samplers: appended to the configured log file and, where a syslog
/// socket exists, to syslog. Logging never throws: a hook must not fail because its log cannot be written.
/// </summary>
public static class Log
{
    private static readonly object Gate = new();
    private static string? _file;
    private static string _tag = "alumet-hpc";
    private static bool _syslog;
    private static bool _stderr;

    /// <param name="file">Log file path (created with its directory; the file never readable by others: <see cref="Append"/>); null = no file.</param>
    /// <param name="syslog">Also send to /dev/log.</param>
    /// <param name="stderr">Also echo to stderr (interactive commands).</param>
    public static void Configure(string? file, string tag, bool syslog, bool stderr)
    {
        _file = file;
        _tag = tag;
        _syslog = syslog && File.Exists("/dev/log");
        _stderr = stderr;
    }

    public static void Info(string message) => Write(6, "info", message);
    public static void Warn(string message) => Write(4, "warning", message);
    public static void Error(string message) => Write(3, "error", message);

    private static void Write(int severity, string level, string message)
    {
        string line = $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {_tag}[{Environment.ProcessId}] {level}: {message}";
        if (_stderr)
        {
            try { Console.Error.WriteLine($"{_tag}: {level}: {message}"); }
            catch (Exception) { /* a terminal hung up (EIO) or a closed pipe: the file and syslog still get the line */ }
        }
        lock (Gate)
        {
            if (_file is not null)
            {
                try
                {
                    string? dir = Path.GetDirectoryName(_file);
                    if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
                    Append(_file, Encoding.UTF8.GetBytes(line + "\n"));
                }
                catch (Exception) { /* the log is best effort by design */ }
            }
            if (_syslog) SendSyslog(severity, message);
        }
    }

    /// <summary>
    /// Appends one line. The lines name the node's jobs, their reasons and their users' keyed Parquet paths, so the file
    /// is no other user's to read (README "Configuration", Logs): created 0640 by the open itself (O_CREAT's mode), and
    /// an existing regular file that others may read (0644, left by an earlier version or by logrotate's <c>create</c>
    /// without a mode) loses those bits before the line is written: fchmod on the descriptor fstat checked, so what is
    /// changed is the file opened, never another one a path names later. A device or a FIFO (/dev/null) is left as it
    /// is; a file with other names too (a hard link) is not changed. Never through a symbolic link (O_NOFOLLOW: a
    /// link in the log's directory is not followed, the line is lost). O_APPEND: the kernel appends each line at the
    /// end, so processes logging at once (hooks, the sampler) do not write over each other's lines. O_NONBLOCK: a FIFO
    /// with no reader fails the open (ENXIO) and a full one the write, rather than holding the hook for good (hooks
    /// return within their bound whatever happens); the line is lost, syslog has it. A regular file ignores the flag.
    /// </summary>
    private static void Append(string path, byte[] bytes)
    {
        const int OWrOnly = 1, ONoCtty = 0x100, OAppend = 0x400, ONonBlock = 0x800;
        const int Mode0640 = 0b110_100_000;
        int fd = Libc.open_mode(path, OWrOnly | Libc.O_CREAT | OAppend | ONoCtty | ONonBlock | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, Mode0640);
        if (fd < 0) return;
        try
        {
            const uint TypeMask = 0xF000, Regular = 0x8000, Others = 0b000_000_111;
            if (Libc.FileStatus(fd) is var (mode, links, _, _) && (mode & TypeMask) == Regular && links == 1 && (mode & Others) != 0)
                Libc.fchmod(fd, mode & 0xFFF & ~Others);
            Libc.WriteAll(fd, bytes);
        }
        finally { Libc.close(fd); }
    }

    private static void SendSyslog(int severity, string message)
    {
        try
        {
            // facility daemon (3): RFC 3164 "<PRI>tag[pid]: msg" on the local datagram socket.
            using var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint("/dev/log"));
            s.Send(Encoding.UTF8.GetBytes($"<{3 * 8 + severity}>{_tag}[{Environment.ProcessId}]: {message}"));
        }
        catch (Exception) { /* no syslog daemon: the file is enough */ }
    }
}
