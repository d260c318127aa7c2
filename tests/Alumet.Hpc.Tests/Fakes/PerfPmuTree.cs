namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// A generated perf_events PMU description, laid out like <c>/sys/bus/event_source/devices/power</c>: <c>type</c>,
/// <c>cpumask</c> and <c>events/energy-*</c> with <c>.scale</c> and <c>.unit</c>. Pointing <c>type</c> at the software
/// PMU (1) makes the kernel's real perf_event_open count CPU_CLOCK (event 0, ns) on a machine without RAPL.
/// </summary>
public sealed class PerfPmuTree : TempTree
{
    public const string Scale = "2.3283064365386962890625e-10"; // 2^-32 J, the RAPL PMU's scale on x86

    public PerfPmuTree(int type = 1, string cpumask = "0") : base("perf")
    {
        Write(Path.Combine("power", "type"), $"{type}\n");
        Write(Path.Combine("power", "cpumask"), $"{cpumask}\n");
    }

    public PerfPmuTree Event(string name, string spec = "event=0x00", string scale = Scale, string unit = "Joules")
    {
        Write(Path.Combine("power", "events", name), spec + "\n");
        Write(Path.Combine("power", "events", name + ".scale"), scale + "\n");
        Write(Path.Combine("power", "events", name + ".unit"), unit + "\n");
        return this;
    }
}
