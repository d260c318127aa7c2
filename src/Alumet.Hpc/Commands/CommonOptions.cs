using System.CommandLine;

namespace Alumet.Hpc.Commands;

internal static class CommonOptions
{
    public static Option<string?> Config() => new("--config", "-c")
    {
        Description = "TOML config file (default: $ALUMET_HPC_CONFIG, then /etc/alumet-hpc/alumet.toml, then built-in defaults)",
    };
}
