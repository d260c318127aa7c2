namespace Alumet.Hpc.Tests.Fakes;

/// <summary>A generated procfs with a scripted /proc/stat aggregate line.</summary>
public sealed class ProcTree : TempTree
{
    public ProcTree() : base("procfs") => SetStat(0, 0);

    /// <summary>
    /// Sets cumulative busy and idle ticks (USER_HZ): busy goes to "user", idle to "idle", steal to "steal". The file is
    /// overwritten in place (same inode: ProcStat keeps it open and preads offset 0, as it does the kernel's), every value
    /// zero-padded to a fixed width so that one write replaces it whole and a concurrent read never sees a short or empty file.
    /// </summary>
    public void SetStat(ulong busyTicks, ulong idleTicks, ulong stealTicks = 0)
    {
        string path = PathOf("stat");
        using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
        string line = $"{busyTicks:D20} 0 0 {idleTicks:D20} 0 0 0 {stealTicks:D20} 0 0\n";
        fs.Write(System.Text.Encoding.ASCII.GetBytes($"cpu  {line}cpu0 {line}intr 0\nctxt 0\n"));
    }
}
