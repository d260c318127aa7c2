namespace Alumet.Hpc.Tests.Fakes;

/// <summary>A temporary directory deleted at dispose; base of the generated sysfs/procfs trees.</summary>
public class TempTree : IDisposable
{
    public string Root { get; }

    public TempTree(string prefix = "alumet-test")
    {
        Root = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
    }

    public string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public string Write(string relative, string content)
    {
        string path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
        return path;
    }

    public virtual void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }
}
