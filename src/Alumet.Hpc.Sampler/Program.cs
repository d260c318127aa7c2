using Alumet.Hpc.Jobs;

// alumet-hpc-sampler node-sampler [--detach] [--config FILE]: the daemon of `alumet-hpc node-sampler`.
// alumet-hpc-sampler sample [--detach] [--config FILE] REGISTRATION: the sampler of `alumet-hpc sample`, which checks its
// options and runs this in its place (Jobs/OneJobSampler.cs). No System.CommandLine here: it would be in this binary.
// The verbs are kept so that the process reads as what it does (ps, pgrep) under either binary.
const string Usage = "usage: alumet-hpc-sampler node-sampler [--detach] [--config FILE] (started by the prologs; see alumet-hpc node-sampler --help)";
string verb = args.Length > 0 ? args[0] : "";
string usage = verb == OneJobSampler.Verb ? OneJobSampler.Usage : Usage;
if (verb is not ("node-sampler" or OneJobSampler.Verb))
{
    Console.Error.WriteLine($"alumet-hpc-sampler: {Usage}");
    return 2;
}
if (!DescriptorLimit.Ensure("alumet-hpc-sampler")) return DescriptorLimit.ExitCode;
bool detach = false;
string? config = null, registration = null;
for (int i = 1; i < args.Length; i++)
{
    if (args[i] == "--detach") detach = true;
    else if (args[i] is "--config" or "-c" && i + 1 < args.Length) config = args[++i];
    else if (verb == OneJobSampler.Verb && registration is null && !args[i].StartsWith('-')) registration = args[i];
    else
    {
        Console.Error.WriteLine($"alumet-hpc-sampler: unknown argument '{args[i]}'; {usage}");
        return 2;
    }
}
try
{
    if (verb != OneJobSampler.Verb) return NodeSamplerHost.Main(config, detach);
    if (registration is null)
    {
        Console.Error.WriteLine($"alumet-hpc-sampler: sample: no registration; {usage}");
        return 2;
    }
    if (OneJobSampler.ParseRegistration(registration, out string? error) is not { } reg)
    {
        Console.Error.WriteLine($"alumet-hpc-sampler: sample: {error}");
        return 2;
    }
    // Each ended job's Parquet file and row, or its not-measured row, come from the full binary beside this one, whose
    // log lines come to this stderr in the foreground.
    return OneJobSampler.Run(config, detach, reg, _ => FinalizerProcess.BesideThisBinary(config, logToStderr: !detach));
}
catch (Exception e)
{
    string line = $"alumet-hpc-sampler: error: {Alumet.Hpc.Core.ErrorText.Describe(e)}";
    try { Console.Error.WriteLine(line); }
    catch (IOException) { DescriptorLimit.Say(line); } // no descriptor left for Console's own
    return 1;
}
