using System.Reflection;

namespace Alumet.Hpc.Core;

public static class ToolInfo
{
    public const string Name = "alumet-hpc";

    /// <summary>Assembly informational version (set from the project's Version).</summary>
    public static string Version { get; } =
        typeof(ToolInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}
