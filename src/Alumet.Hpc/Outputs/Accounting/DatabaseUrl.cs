using System.Globalization;
using Npgsql;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>
/// <c>[database] url = "postgresql://[user@]host[:port]/database[?host=/socket/dir&amp;port=N&amp;sslmode=M&amp;application_name=A&amp;schema=S]"</c>
/// (libpq's URI form, without a password: the config is world-readable) and <c>password_file</c>, a file that only its
/// owner can read, holding the password on its first line.
/// </summary>
/// <param name="Schema">PostgreSQL schema holding the tables (<c>?schema=</c>); empty: the server's search_path (public).</param>
public sealed record DatabaseUrl(string Host, int Port, string Database, string User, string SslMode, string ApplicationName, string PasswordFile, string Schema = "")
{
    /// <summary>Where, for messages: never the password.</summary>
    public string Display => $"postgresql://{(User.Length > 0 ? User + "@" : "")}{(Host.StartsWith('/') ? "" : Host)}:{Port}/{Database}{(Host.StartsWith('/') ? $"?host={Host}" : "")}{(Schema.Length > 0 ? (Host.StartsWith('/') ? "&" : "?") + "schema=" + Schema : "")}";

    public static bool IsPostgres(string url) => url.StartsWith("postgresql://", StringComparison.Ordinal) || url.StartsWith("postgres://", StringComparison.Ordinal);

    /// <summary>Parses <paramref name="url"/>; null with <paramref name="error"/> (what is wrong and how to fix it) otherwise.</summary>
    public static DatabaseUrl? TryParse(string url, string passwordFile, out string? error)
    {
        error = null;
        if (!IsPostgres(url)) { error = "is not a postgresql:// URL"; return null; }
        string rest = url[(url.IndexOf("://", StringComparison.Ordinal) + 3)..];
        string query = "";
        int q = rest.IndexOf('?');
        if (q >= 0) { query = rest[(q + 1)..]; rest = rest[..q]; }
        int slash = rest.IndexOf('/');
        string authority = slash >= 0 ? rest[..slash] : rest, database = slash >= 0 ? Uri.UnescapeDataString(rest[(slash + 1)..]) : "";
        string user = "", host = "", port = "5432";
        int at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            user = Uri.UnescapeDataString(authority[..at]);
            authority = authority[(at + 1)..];
            if (user.Contains(':')) { error = "holds a password: the config is readable by every user; put the password in [database] password_file (mode 0600) instead"; return null; }
        }
        int colon = authority.LastIndexOf(':');
        if (colon >= 0) { host = authority[..colon]; port = authority[(colon + 1)..]; }
        else host = authority;
        string sslmode = "", app = "alumet-hpc", schema = "";
        foreach (string kv in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = kv.IndexOf('=');
            string k = eq >= 0 ? kv[..eq] : kv, v = eq >= 0 ? Uri.UnescapeDataString(kv[(eq + 1)..]) : "";
            switch (k)
            {
                case "host": host = v; break;
                case "port": port = v; break;
                case "sslmode": sslmode = v; break;
                case "application_name": app = v; break;
                case "schema":
                    if (!Schedulers.SchedulerInput.IsName(v) || v.Contains('.') || v.Contains('-')) { error = $"has a bad schema '{v}' (letters, digits, '_')"; return null; }
                    schema = v;
                    break;
                case "password": error = "holds a password: the config is readable by every user; put the password in [database] password_file (mode 0600) instead"; return null;
                default: error = $"has an unknown parameter '{k}' (known: host, port, sslmode, application_name, schema)"; return null;
            }
        }
        if (host.Length == 0) { error = "names no host: use postgresql://HOST[:PORT]/DB, or ?host=/socket/directory for a unix socket"; return null; }
        if (database.Length == 0) { error = "names no database: use postgresql://HOST[:PORT]/DATABASE"; return null; }
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int p) || p is < 1 or > 65535) { error = $"has a bad port '{port}' (1..65535)"; return null; }
        if (sslmode.Length > 0 && !Enum.TryParse<SslMode>(sslmode, ignoreCase: true, out _)) { error = $"has an unknown sslmode '{sslmode}' (disable, allow, prefer, require, verify-ca, verify-full)"; return null; }
        if (passwordFile.Length > 0 && !Path.IsPathFullyQualified(passwordFile)) { error = "password_file must be an absolute path"; return null; }
        return new DatabaseUrl(host, p, database, user, sslmode, app, passwordFile, schema);
    }

    /// <summary>The Npgsql connection string, with <paramref name="password"/> when given (read earlier, see
    /// <see cref="ReadReportPassword"/>), else the password read from <see cref="PasswordFile"/> now.</summary>
    /// <exception cref="InvalidDataException">The password file is readable by others, or unreadable: a sentence says which.</exception>
    internal string ConnectionString(int timeoutS, string? password = null)
    {
        var b = new NpgsqlConnectionStringBuilder
        {
            Host = Host, Port = Port, Database = Database, ApplicationName = ApplicationName,
            Timeout = Math.Clamp(timeoutS, 1, 1024), CommandTimeout = Math.Clamp(timeoutS, 1, 3600),
            Pooling = false, // short-lived processes; the connection closes with the AccountingDb
        };
        if (User.Length > 0) b.Username = User;
        if (Schema.Length > 0) b.SearchPath = Schema;
        if (SslMode.Length > 0) b.SslMode = Enum.Parse<SslMode>(SslMode, ignoreCase: true);
        if (password is not null) b.Password = password;
        else if (PasswordFile.Length > 0) b.Password = ReadPassword(PasswordFile);
        return b.ConnectionString;
    }

    /// <summary>
    /// The password of the report's read-only role (<c>[database] report_password_file</c>): like the SQLite database,
    /// a file that root owns and the group <c>alumet</c> reads (0640 root:alumet), so that only alumet-report, setgid
    /// <c>alumet</c>, can read it for users (README, "Who sees what"). Refused when others can read it, or when a
    /// group other than <c>alumet</c> can, or when root does not own it; 0600 root is accepted (root-only reports).
    /// </summary>
    /// <exception cref="InvalidDataException">A sentence: what is wrong with the file and how to fix it.</exception>
    public static string ReadReportPassword(string path)
    {
        const string fix = "; make it root-owned, group alumet, mode 0640 (README, \"Who sees what\")";
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try { handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read the report's database password file {path}: it is missing or not readable by the group {DatabaseFileAccess.Group}" + fix);
        }
        using (handle)
        {
            if (Native.Libc.StatFd(handle) is not { Mode: var mode, Uid: var uid, Gid: var gid })
                throw new InvalidDataException($"cannot check the owner of the report's database password file {path}" + fix);
            IntPtr g = Native.Libc.getgrnam(DatabaseFileAccess.Group);
            uint? alumet = g == IntPtr.Zero ? null : (uint)System.Runtime.InteropServices.Marshal.ReadInt32(g, 16);
            if (uid != 0 || (mode & 0b111) != 0 || ((mode & 0b111_000) != 0 && gid != alumet))
                throw new InvalidDataException($"the report's database password file {path} could be read or changed by others "
                    + $"(owner uid {uid}, gid {gid}, mode {Convert.ToString(mode & 0b111_111_111, 8)}): refused, nothing sent" + fix);
            var bytes = new byte[4096];
            int n = RandomAccess.Read(handle, bytes, 0);
            string text = System.Text.Encoding.UTF8.GetString(bytes, 0, n);
            int nl = text.IndexOf('\n');
            return (nl >= 0 ? text[..nl] : text).TrimEnd('\r');
        }
    }

    internal static string ReadPassword(string path)
    {
        UnixFileMode mode;
        try { mode = File.GetUnixFileMode(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read the database password file {path}: it is missing or not readable by this user; create it with mode 0600");
        }
        if ((mode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
            throw new InvalidDataException($"the database password file {path} is readable by other users (mode {Convert.ToString((int)mode, 8)}): chmod 600 it (refused, nothing sent)");
        try
        {
            string text = File.ReadAllText(path);
            int nl = text.IndexOf('\n');
            return (nl >= 0 ? text[..nl] : text).TrimEnd('\r');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read the database password file {path}: run as its owner (root) or fix its owner");
        }
    }
}
