using System.Net.Sockets;
using System.Text;

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

    /// <param name="file">Log file path (created with its directory; the file 0640 from its creation on); null = no file.</param>
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
                    // Created 0640 by the open itself (O_CREAT's mode): it used to be created with the umask's mode (0644)
                    // and closed after its first line, so until then anyone could open it and keep reading, and a first
                    // line that failed (a full /var/log) left it readable by all for good. The lines name jobs, users'
                    // keyed Parquet paths, reasons: README "Configuration", Logs.
                    using var log = new FileStream(_file, new FileStreamOptions
                    {
                        Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite | FileShare.Delete,
                        UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead,
                    });
                    log.Write(Encoding.UTF8.GetBytes(line + "\n"));
                }
                catch (Exception) { /* the log is best effort by design */ }
            }
            if (_syslog) SendSyslog(severity, message);
        }
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
