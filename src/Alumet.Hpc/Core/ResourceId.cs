namespace Alumet.Hpc.Core;

/// <summary>A measured resource, written <c>kind:id</c> (<c>cpu_package:0</c>, <c>dram:1</c>, <c>gpu:0000:3b:00.0</c>).</summary>
public readonly record struct ResourceId(ResourceKind Kind, string Id)
{
    public override string ToString() => $"{Kind.Wire()}:{Id}";
}
