using System.Text.Json.Serialization;
using Tomlyn.Serialization;

namespace Alumet.Hpc.Config;

/// <summary>
/// Source-generated TOML metadata for <see cref="AlumetConfig"/>. Tomlyn's reflection overloads warn
/// IL2026/IL3050 and fail under NativeAOT, so every (de)serialization goes through this context.
/// snake_case keys (rapl_hz) map to the PascalCase properties (RaplHz). Replace: an [report] admins list
/// replaces the default ["root"] rather than appending to it.
/// </summary>
[TomlSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    PreferredObjectCreationHandling = JsonObjectCreationHandling.Replace)]
[TomlSerializable(typeof(AlumetConfig))]
internal sealed partial class AlumetTomlContext : TomlSerializerContext
{
}
