using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// The node sampler's unix socket, <c>&lt;state_dir&gt;/node/sampler.sock</c>: registration from prologs, ends from
/// epilogs, <c>alumet-hpc ctl</c>. One request line per connection, answered by lines, then closed. Only the
/// sampler's own uid (root on a cluster) may talk to it: the directory is 0700 and every peer's uid is checked with
/// SO_PEERCRED (a path check alone fails once the directory mode is changed by hand).
/// </summary>
public static class NodeSocket
{
    public const string FileName = "sampler.sock";
    private const int SolSocket = 1, SoPeerCred = 17; // <sys/socket.h>, Linux
    private const int MaxRequest = 4096;

    public static string PathFor(string stateRoot) => Path.Combine(stateRoot, Spool.NodeSpool.Directory, FileName);

    /// <summary>The peer's uid from SO_PEERCRED (struct ucred: pid, uid, gid), or -1.</summary>
    public static int PeerUid(Socket s)
    {
        Span<byte> cred = stackalloc byte[12];
        try
        {
            int n = s.GetRawSocketOption(SolSocket, SoPeerCred, cred);
            return n >= 8 ? MemoryMarshal.Read<int>(cred[4..]) : -1;
        }
        catch (SocketException) { return -1; }
    }

    /// <summary>Binds the socket (the caller holds the node lock, so a leftover file is stale) and serves requests until disposed.</summary>
    public sealed class Server : IDisposable
    {
        private readonly Socket _listener;
        private readonly Func<string, string> _handle;
        private readonly int _allowedUid;
        private readonly Thread _accept;
        private volatile bool _closed;

        public string Path { get; }

        /// <param name="handle">Request line → answer (one or more lines). Runs on a connection thread.</param>
        public Server(string path, Func<string, string> handle)
        {
            Path = path;
            _handle = handle;
            _allowedUid = (int)Native.Libc.getuid();
            File.Delete(path);
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _listener.Bind(new UnixDomainSocketEndPoint(path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            _listener.Listen(64);
            _accept = new Thread(AcceptLoop) { Name = "socket", IsBackground = true };
            _accept.Start();
        }

        private void AcceptLoop()
        {
            while (!_closed)
            {
                Socket conn;
                try { conn = _listener.Accept(); }
                catch (Exception) when (_closed) { return; }
                catch (SocketException e) { Log.Warn($"node socket: accept failed: {e.Message}"); Thread.Sleep(10); continue; }
                new Thread(() => Serve(conn)) { Name = "request", IsBackground = false }.Start(); // an answer in flight keeps the process
            }
        }

        private void Serve(Socket conn)
        {
            using (conn)
            {
                try
                {
                    int uid = PeerUid(conn);
                    if (uid != _allowedUid)
                    {
                        Send(conn, $"error permission denied: only uid {_allowedUid} may use this socket (peer uid {uid})\n");
                        Log.Warn($"node socket: refused a request from uid {uid}");
                        return;
                    }
                    conn.ReceiveTimeout = 5000;
                    string? line = ReadLine(conn);
                    if (line is null) return;
                    Send(conn, _handle(line));
                }
                catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException) { }
            }
        }

        public void Dispose()
        {
            _closed = true;
            try { _listener.Close(); } catch (SocketException) { }
            try { File.Delete(Path); } catch (IOException) { }
        }
    }

    /// <summary>Sends one request and returns the whole answer, or null (with <paramref name="error"/>) when nobody answered in time.</summary>
    public static string? Request(string stateRoot, string line, TimeSpan timeout, out string? error)
    {
        string path = PathFor(stateRoot);
        error = null;
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            s.Connect(new UnixDomainSocketEndPoint(path));
            int ms = (int)Math.Clamp(timeout.TotalMilliseconds, 1, int.MaxValue);
            s.SendTimeout = ms;
            s.ReceiveTimeout = ms;
            Send(s, line + "\n");
            var answer = new StringBuilder();
            var buf = new byte[4096];
            while (true)
            {
                int n = s.Receive(buf);
                if (n == 0) break;
                answer.Append(Encoding.UTF8.GetString(buf, 0, n));
            }
            return answer.ToString();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
        {
            error = $"the node sampler did not answer within {timeout.TotalSeconds:0.#} s";
            return null;
        }
        catch (SocketException e)
        {
            error = e.SocketErrorCode is SocketError.AddressNotAvailable or SocketError.ConnectionRefused or SocketError.AddressFamilyNotSupported
                ? $"no node sampler is running ({path})"
                : $"{path}: {e.Message}";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = $"{path}: {e.Message}";
            return null;
        }
    }

    private static void Send(Socket s, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        int sent = 0;
        while (sent < bytes.Length) sent += s.Send(bytes, sent, bytes.Length - sent, SocketFlags.None);
    }

    private static string? ReadLine(Socket s)
    {
        var buf = new byte[MaxRequest];
        int used = 0;
        while (used < buf.Length)
        {
            int n = s.Receive(buf, used, buf.Length - used, SocketFlags.None);
            if (n == 0) break;
            int nl = Array.IndexOf(buf, (byte)'\n', used, n);
            used += n;
            if (nl >= 0) return Encoding.UTF8.GetString(buf, 0, nl);
        }
        return used == 0 ? null : Encoding.UTF8.GetString(buf, 0, used).TrimEnd('\n');
    }
}
