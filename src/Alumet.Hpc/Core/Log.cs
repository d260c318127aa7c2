using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Alumet.Hpc.Jobs;
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
    /// <summary>Why the last line the file did not take was not written, as said on stderr (said again only when it changes).</summary>
    private static string? _said;

    /// <param name="file">Log file path (created with its directories; the file never readable by others, and for root
    /// nothing on its path a user could plant: <see cref="Append"/>; a line it does not take goes to stderr); null = no file.</param>
    /// <param name="syslog">Also send to /dev/log.</param>
    /// <param name="stderr">Also echo to stderr (interactive commands).</param>
    public static void Configure(string? file, string tag, bool syslog, bool stderr)
    {
        _file = file;
        _tag = tag;
        _syslog = syslog && File.Exists("/dev/log");
        _stderr = stderr;
        _said = null;
    }

    public static void Info(string message) => Write(6, "info", message);
    public static void Warn(string message) => Write(4, "warning", message);
    public static void Error(string message) => Write(3, "error", message);

    private static void Write(int severity, string level, string message)
    {
        string line = $"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {_tag}[{Environment.ProcessId}] {level}: {message}";
        lock (Gate)
        {
            string? lost = null;
            if (_file is not null)
            {
                try { lost = Append(_file, Encoding.UTF8.GetBytes(line + "\n")); }
                catch (Exception e) { lost = e.Message; /* the log is best effort by design */ }
            }
            if (_stderr || lost is not null)
            {
                try
                {
                    // A line the file did not take goes to stderr (a hook's: slurmd's or OAR's; a command's: its
                    // terminal), after why, said once while the reason stays the same.
                    if (lost is not null && lost != _said)
                    {
                        _said = lost;
                        Console.Error.WriteLine($"{_tag}: log_file {_file} not written, its lines go to stderr: {lost}");
                    }
                    Console.Error.WriteLine($"{_tag}: {level}: {message}");
                }
                catch (Exception) { /* a terminal hung up (EIO) or a closed pipe: the file and syslog still get the line */ }
            }
            if (_syslog) SendSyslog(severity, message);
        }
    }

    /// <summary>
    /// Appends one line; null when written, else why not (one sentence, with the fix). The file is opened by
    /// <see cref="RootOnly.OpenUnplanted"/>: for root, nothing on its path a user could have planted or could swap (no
    /// symbolic link, directories and the file root's, none writable by a user without the sticky bit, the file with one
    /// name; the file checked on the descriptor opened), so its lines (the node's jobs, their reasons, their users' keyed Parquet
    /// paths) are no other user's to read or control (README "Configuration", Logs). Created 0640 by the open itself
    /// (O_CREAT's mode), and an existing regular file that others may read (0644, left by an earlier version or by
    /// logrotate's <c>create</c> without a mode) loses those bits before the line is written: fchmod on the descriptor
    /// fstat checked (the one <see cref="RootOnly.OpenUnplanted"/> took), so what is changed is the file opened, never
    /// another one a path names later. A device or a FIFO
    /// (/dev/null) is left as it is; a file with other names too (a hard link: another user's own) is not changed.
    /// O_APPEND: the kernel appends each line at the end, so processes logging at once (hooks, the sampler) do not write
    /// over each other's lines. O_NONBLOCK: a FIFO with no reader fails the open (ENXIO) and a full one the write, rather
    /// than holding the hook for good (hooks return within their bound whatever happens). A regular file ignores the flag.
    /// </summary>
    private static string? Append(string path, byte[] bytes)
    {
        const int OWrOnly = 1, ONoCtty = 0x100, OAppend = 0x400, ONonBlock = 0x800;
        const int Mode0640 = 0b110_100_000;
        int fd = RootOnly.OpenUnplanted(path, OWrOnly | Libc.O_CREAT | OAppend | ONoCtty | ONonBlock, Mode0640, out var status, out string why);
        if (fd < 0) return why;
        try
        {
            const uint Others = 0b000_000_111;
            if (status is { IsRegular: true, Links: 1, Mode: var mode } && (mode & Others) != 0)
                Libc.fchmod(fd, mode & 0xFFF & ~Others);
            return Libc.WriteAll(fd, bytes) ? null
                : $"cannot write to {path} ({new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError()).Message})";
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
