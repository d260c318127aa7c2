using Alumet.Hpc.Jobs;

// alumet-hpc-sampler node-sampler [--detach] [--config FILE]: the daemon of `alumet-hpc node-sampler`, and nothing else.
// The verb is kept so that the process reads as the node sampler (ps, pgrep) under either binary.
const string Usage = "usage: alumet-hpc-sampler node-sampler [--detach] [--config FILE] (started by the prologs; see alumet-hpc node-sampler --help)";
if (args.Length == 0 || args[0] != "node-sampler")
{
    Console.Error.WriteLine($"alumet-hpc-sampler: {Usage}");
    return 2;
}
bool detach = false;
string? config = null;
for (int i = 1; i < args.Length; i++)
{
    if (args[i] == "--detach") detach = true;
    else if (args[i] is "--config" or "-c" && i + 1 < args.Length) config = args[++i];
    else
    {
        Console.Error.WriteLine($"alumet-hpc-sampler: unknown argument '{args[i]}'; {Usage}");
        return 2;
    }
}
try { return NodeSamplerHost.Main(config, detach); }
catch (Exception e)
{
    Console.Error.WriteLine($"alumet-hpc-sampler: error: {Alumet.Hpc.Core.ErrorText.Describe(e)}");
    return 1;
}
