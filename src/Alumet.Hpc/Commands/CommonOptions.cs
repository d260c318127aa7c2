using System.CommandLine;
using System.Text.RegularExpressions;

namespace Alumet.Hpc.Commands;

internal static partial class CommonOptions
{
    public static Option<string?> Config() => new("--config", "-c")
    {
        Description = "TOML config file (default: $ALUMET_HPC_CONFIG, then /etc/alumet-hpc/alumet.toml, then built-in defaults)",
    };

    [GeneratedRegex("^[0-9]{1,20}$")]
    public static partial Regex JobIdPattern();

    /// <summary>POSIX portable user names (plus the '$' of machine accounts at the end).</summary>
    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9._-]{0,63}\\$?$")]
    public static partial Regex UserPattern();

    /// <summary>Host names and cluster names: letters, digits, dot, dash, underscore.</summary>
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")]
    public static partial Regex NamePattern();
}
