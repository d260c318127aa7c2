using Xunit;
using Alumet.Hpc.Schedulers.Oar;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

public sealed class OarStarterRecordTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("alumet-oar-state-").FullName;
    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public void Write_read_delete_round_trip()
    {
        Assert.Null(OarStarterRecord.Read(_state, "7"));
        Assert.True(OarStarterRecord.Write(_state, "7", OarStarterRecord.ResourceManager));
        Assert.Equal(Path.Combine(_state, "oar-starters", "7"), OarStarterRecord.PathFor(_state, "7"));
        Assert.Equal("resource-manager\n", File.ReadAllText(Path.Combine(_state, "oar-starters", "7")));
        Assert.Equal("resource-manager", OarStarterRecord.Read(_state, "7"));
        Assert.Null(OarStarterRecord.Read(_state, "70"));
        OarStarterRecord.Delete(_state, "7");
        Assert.Null(OarStarterRecord.Read(_state, "7"));
        OarStarterRecord.Delete(_state, "7"); // twice: no throw
    }

    [Fact]
    public void Unknown_content_is_no_record()
    {
        Directory.CreateDirectory(Path.Combine(_state, "oar-starters"));
        File.WriteAllText(Path.Combine(_state, "oar-starters", "8"), "someone-else\n");
        Assert.Null(OarStarterRecord.Read(_state, "8"));
    }

    [Fact]
    public void Unwritable_state_dir_reports_false()
    {
        string file = Path.Combine(_state, "plainfile");
        File.WriteAllText(file, "");
        Assert.False(OarStarterRecord.Write(file, "9", OarStarterRecord.Prologue));
    }
}
