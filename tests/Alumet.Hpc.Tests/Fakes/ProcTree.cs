namespace Alumet.Hpc.Tests.Fakes;

/// <summary>A generated procfs with a scripted /proc/stat aggregate line.</summary>
public sealed class ProcTree : TempTree
{
    public ProcTree() : base("procfs") => SetStat(0, 0);

    /// <summary>Sets cumulative busy and idle ticks (USER_HZ): busy goes to "user", idle to "idle", steal to "steal".</summary>
    public void SetStat(ulong busyTicks, ulong idleTicks, ulong stealTicks = 0)
    {
        string path = PathOf("stat");
        using var fs = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite);
        var text = $"cpu  {busyTicks} 0 0 {idleTicks} 0 0 0 {stealTicks} 0 0\ncpu0 {busyTicks} 0 0 {idleTicks} 0 0 0 {stealTicks} 0 0\nintr 0\nctxt 0\n";
        fs.SetLength(0);
        fs.Write(System.Text.Encoding.ASCII.GetBytes(text));
    }
}
