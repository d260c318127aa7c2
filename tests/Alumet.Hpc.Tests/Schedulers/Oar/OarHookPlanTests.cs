using Xunit;
using Alumet.Hpc.Schedulers.Oar;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

/// <summary>Who starts and stops a sampler: never twice on a node, always stopped by the one who started it.</summary>
public sealed class OarHookPlanTests
{
    private const string Rm = OarStarterRecord.ResourceManager, Pro = OarStarterRecord.Prologue;

    [Fact]
    public void Resource_manager_mode_first_node_starts_once()
    {
        // OAR order on the first node: rm init, prologue, epilogue, rm clean.
        var init = OarHookPlan.For(OarHookKind.ResourceManagerInit, null);
        Assert.Equal(new OarHookPlan(OarHookAction.Start, Rm, false, null), init);
        Assert.Equal(new OarHookPlan(OarHookAction.Nothing, null, false, "sampler already started by the resource-manager hook on this node"),
            OarHookPlan.For(OarHookKind.Prologue, Rm));
        Assert.Equal(new OarHookPlan(OarHookAction.Nothing, null, false, "sampler belongs to the resource-manager hook (stopped by its clean)"),
            OarHookPlan.For(OarHookKind.Epilogue, Rm));
        Assert.Equal(new OarHookPlan(OarHookAction.Stop, null, true, null), OarHookPlan.For(OarHookKind.ResourceManagerClean, Rm));
    }

    [Fact]
    public void Prologue_mode_without_resource_manager_hook()
    {
        Assert.Equal(new OarHookPlan(OarHookAction.Start, Pro, false, null), OarHookPlan.For(OarHookKind.Prologue, null));
        Assert.Equal(new OarHookPlan(OarHookAction.Stop, null, true, null), OarHookPlan.For(OarHookKind.Epilogue, Pro));
        Assert.Equal(new OarHookPlan(OarHookAction.Stop, null, true, null), OarHookPlan.For(OarHookKind.Epilogue, null));
    }

    [Fact]
    public void A_second_prologue_never_starts_again() =>
        Assert.Equal(OarHookAction.Nothing, OarHookPlan.For(OarHookKind.Prologue, Pro).Action);
}
