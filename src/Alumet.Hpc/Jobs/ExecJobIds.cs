namespace Alumet.Hpc.Jobs;

/// <summary>
/// Job ids for <c>exec</c> runs: a per-node counter in &lt;state_dir&gt;/exec/next-id, taken under an exclusive
/// open so that concurrent runs never share an id (the id keys the spool, the Parquet file and the DB row).
/// </summary>
public static class ExecJobIds
{
    public static string Next(string stateRoot)
    {
        string dir = Path.Combine(stateRoot, Schedulers.SchedulerNames.Exec);
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "next-id");
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                using var reader = new StreamReader(fs, leaveOpen: true);
                long id = long.TryParse(reader.ReadToEnd().Trim(), out long n) && n > 0 ? n : 1;
                fs.SetLength(0);
                using var writer = new StreamWriter(fs);
                writer.Write((id + 1).ToString());
                return id.ToString();
            }
            catch (IOException) when (attempt < 200)
            {
                Thread.Sleep(5); // another exec holds the lock
            }
        }
    }
}
