namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// Tests that run one at a time, after the others: those that make copies of the test host holding every test's pipes
/// and locks (<see cref="ForkHolder"/>), or watch the host from a busy thread (ExecInTheTestHostTests).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AloneCollection
{
    public const string Name = "Alone";
}
