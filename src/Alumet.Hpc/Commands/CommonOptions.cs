using System.CommandLine;

namespace Alumet.Hpc.Commands;

internal static class CommonOptions
{
    public static Option<string?> Config() => new("--config", "-c")
    {
        Description = "TOML config file (default: $ALUMET_HPC_CONFIG, then /etc/alumet-hpc/alumet.toml, then built-in defaults)",
    };

    /// <summary>The system config (hooks' paths) for root-side commands; null after printing the one-line error.</summary>
    public static Alumet.Hpc.Config.AlumetConfig? LoadSystem(string? path)
    {
        try { return Alumet.Hpc.Config.ConfigLoader.Load(path, policy: Alumet.Hpc.Config.DefaultPathPolicy.System).Config; }
        catch (Alumet.Hpc.Config.ConfigException e)
        {
            Console.Error.WriteLine($"alumet-hpc: {e.Message}");
            return null;
        }
    }
}
