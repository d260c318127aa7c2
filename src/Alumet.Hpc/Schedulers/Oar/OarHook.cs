using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>
/// OAR hook entry points. Who starts samplers where (never twice):
/// <list type="bullet">
/// <item>With the resource-manager hook installed (oar/job_resource_manager_alumet.pl), its <c>init</c> starts a
/// sampler on <b>every</b> node of the job and its <c>clean</c> stops it there, before the stock clean kills
/// whatever is left in the job cpuset. It records "resource-manager" as the job's starter on that node.</item>
/// <item>The prologue (first node only) starts a sampler only when no starter is recorded for the job on this
/// node — that is, when the resource-manager hook is not installed (single-node clusters, sites that cannot
/// replace their resource manager). The epilogue stops only what its prologue started.</item>
/// </list>
/// bipbip runs the resource manager's init on all nodes and waits for it before oarexec runs the prologue,
/// so the starter record is always there first. Every hook returns 0: a failing prologue puts the job in
/// Error and the node in Suspected.
/// </summary>
public static partial class OarHook
{
    public const string Scheduler = SchedulerNames.Oar;

    /// <summary>Validates a hook's argv/env. Nothing here touches the filesystem.</summary>
    /// <param name="kind">"prologue", "epilogue" or "resource-manager" (then argv[0] is init|clean).</param>
    /// <param name="argv">prologue/epilogue: <c>jobid user nodefile</c>;
    /// resource-manager: <c>init|clean jobid user node resources_file</c> (from job_resource_manager_alumet.pl).</param>
    /// <param name="jobName">The job hash's <c>job_name</c> (<c>--job-name=</c>, resource manager only); null when not given.</param>
    /// <param name="jobTypes">The job hash's types (<c>--job-type=</c> each, resource manager only): see <see cref="RawRequested"/>.</param>
    public static OarHookParse ParseRequest(string kind, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> env, string? jobName = null,
        IReadOnlyList<string>? jobTypes = null)
    {
        static OarHookParse Fail(string msg) => new(null, msg);
        string? Env(string k) => env.TryGetValue(k, out string? v) ? v : null;

        switch (kind)
        {
            case "prologue":
            case "epilogue":
            {
                if (argv.Count != 3) return Fail($"oar {kind}: expected 3 arguments (jobid user nodefile), got {argv.Count}");
                string jobId = argv[0], user = argv[1], nodeFile = argv[2];
                if (!OarInput.IsJobId(jobId)) return Fail($"oar {kind}: job id {OarInput.Quote(jobId)} is not a job id (digits)");
                if (!OarInput.IsUserName(user)) return Fail($"oar {kind}: user {OarInput.Quote(user)} is not a user name");
                if (!OarInput.IsSafeAbsolutePath(nodeFile)) return Fail($"oar {kind}: node file {OarInput.Quote(nodeFile)} is not an absolute path");
                // OAR sets both; a disagreement means the hook was called by something else than oarexec.
                string? envJob = Env("OAR_JOB_ID") ?? Env("OAR_JOBID");
                if (envJob is not null && envJob != jobId)
                    return Fail($"oar {kind}: OAR_JOB_ID {OarInput.Quote(envJob)} differs from argv job id {jobId}");
                string? envUser = Env("OAR_USER");
                if (envUser is not null && envUser != user)
                    return Fail($"oar {kind}: OAR_USER {OarInput.Quote(envUser)} differs from argv user {OarInput.Quote(user)}");
                string? resources = Env("OAR_RESOURCE_PROPERTIES_FILE");
                if (resources is { Length: 0 }) resources = null;
                if (resources is not null && !OarInput.IsSafeAbsolutePath(resources))
                    return Fail($"oar {kind}: OAR_RESOURCE_PROPERTIES_FILE {OarInput.Quote(resources)} is not an absolute path");
                // Without the variable: OAR writes <runtime dir>/<jobid>_resources beside the node file <runtime dir>/<jobid>.
                resources ??= Path.Combine(Path.GetDirectoryName(nodeFile) ?? "/", jobId + "_resources");
                var k = kind == "prologue" ? OarHookKind.Prologue : OarHookKind.Epilogue;
                return new OarHookParse(new OarHookRequest(k, jobId, user, nodeFile, resources, null), null);
            }
            case "resource-manager":
            {
                if (argv.Count != 5)
                    return Fail($"oar resource-manager: expected 5 arguments (init|clean jobid user node resources_file), got {argv.Count}");
                OarHookKind k;
                if (argv[0] == "init") k = OarHookKind.ResourceManagerInit;
                else if (argv[0] == "clean") k = OarHookKind.ResourceManagerClean;
                else return Fail($"oar resource-manager: action {OarInput.Quote(argv[0])} is neither init nor clean");
                string jobId = argv[1], user = argv[2], node = argv[3], resources = argv[4];
                if (!OarInput.IsJobId(jobId)) return Fail($"oar resource-manager: job id {OarInput.Quote(jobId)} is not a job id (digits)");
                if (!OarInput.IsUserName(user)) return Fail($"oar resource-manager: user {OarInput.Quote(user)} is not a user name");
                if (!OarInput.IsNodeName(node)) return Fail($"oar resource-manager: node {OarInput.Quote(node)} is not a node name");
                if (!OarInput.IsSafeAbsolutePath(resources))
                    return Fail($"oar resource-manager: resources file {OarInput.Quote(resources)} is not an absolute path");
                // The user's text: recorded as is (bounded), printed safely by the report.
                return new OarHookParse(new OarHookRequest(k, jobId, user, null, resources, node, JobIdentity.RecordedName(jobName),
                    k == OarHookKind.ResourceManagerInit && RawRequested(jobTypes)), null);
            }
            default:
                return Fail($"oar: unknown hook {OarInput.Quote(kind)} (prologue, epilogue or resource-manager)");
        }
    }

    /// <summary>The job type that asks for raw storage: <c>oarsub -t alumet=raw</c> (OAR's key=value form, like <c>container=</c>).</summary>
    public const string RawJobType = "alumet=raw";

    /// <summary>
    /// Whether one of the job's types is <see cref="RawJobType"/>. A job type is how an OAR user asks for a kind of
    /// job, and OAR gives the resource manager the job's types (bipbip's job hash, <c>types</c>), not the prologue. OAR's
    /// default admission rule refuses unknown types, so the admin adds this one (oar/README.md "Raw storage on request").
    /// The type only asks: <c>[sampler] job_raw</c> decides.
    /// </summary>
    public static bool RawRequested(IReadOnlyList<string>? jobTypes) =>
        jobTypes is not null && jobTypes.Any(t => t.Trim().Equals(RawJobType, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// This node's OAR name among the job's network_address values: the request's own (resource manager), else
    /// the one equal to the host name (full or short), else the only one; otherwise the host name itself.
    /// </summary>
    public static string ResolveNode(OarHookRequest request, IReadOnlyList<OarResource> resources, string hostName)
    {
        if (request.Node is not null) return request.Node;
        IReadOnlyList<string> nodes = OarResourceProperties.Nodes(resources);
        string shortHost = Short(hostName);
        foreach (string n in nodes) if (n == hostName) return n;
        foreach (string n in nodes) if (Short(n) == shortHost) return n;
        if (nodes.Count == 1 && OarInput.IsNodeName(nodes[0])) return nodes[0];
        return hostName;

        static string Short(string h) => h.IndexOf('.') is int d and > 0 ? h[..d] : h;
    }

    /// <summary>Builds the job identity and GPU set of this node from a validated request.</summary>
    /// <param name="resourcesText">Content of the resources file, or null when it could not be read.</param>
    public static OarJob ResolveJob(OarHookRequest request, string? resourcesText, string hostName, string configuredCluster, int uid)
    {
        IReadOnlyList<OarResource> resources = resourcesText is null ? Array.Empty<OarResource>() : OarResourceProperties.Parse(resourcesText);
        string node = ResolveNode(request, resources, hostName);
        string cluster = configuredCluster.Length > 0 ? configuredCluster : "local";
        var identity = new JobIdentity(Scheduler, cluster, request.JobId, request.User, uid, node) { JobName = request.JobName };
        return new OarJob(identity, OarResourceProperties.GpuDevices(resources, node));
    }
}
