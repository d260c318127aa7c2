using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// A real BMC simulator for one test: Debian's <c>ipmi_sim</c> on 127.0.0.1 at a free UDP port of its own (so tests run
/// in parallel and need no machine-wide lock), with the DCMI module and file-backed Watts sensor of tests/e2e/bmc
/// (bmc-sim.sh builds the module with gcc against libopenipmi-dev). Started in the constructor, stopped by pid in Dispose.
/// Faults: <see cref="Script"/> (slow answers, stale timestamps, no DCMI) and <see cref="Hang"/> (SIGSTOP: no answer at all).
/// </summary>
public sealed class BmcSimulator : TempTree
{
    public int Port { get; }
    public int Pid { get; }
    public string Host => $"127.0.0.1:{Port}";
    public string PasswordFile => PathOf("password");
    public const string User = "alumet";

    public static string ScriptPath => Path.Combine(RepoRoot(), "tests", "e2e", "bmc", "bmc-sim.sh");

    /// <param name="sdrUnits1">The power sensor's "sensor units 1" byte in its SDR (0x28: Watts per hour).</param>
    public BmcSimulator(string script = "watts 300", int sensorWatts = 300, byte sdrUnits1 = 0) : base("alumet-bmc")
    {
        Write("bmc.script", script + "\n");
        Write("sensor_watts", sensorWatts + "\n");
        if (sdrUnits1 != 0) Write("sdr_units1", $"0x{sdrUnits1:x2}\n");
        Exception? last = null;
        for (int attempt = 0; attempt < 3; attempt++) // a free port can be taken between probing and binding
        {
            Port = FreeUdpPort();
            var (rc, output) = Run(ScriptPath, "start", Root, Port.ToString());
            if (rc == 0 && int.TryParse(output.Trim().Split('\n')[^1], out int pid)) { Pid = pid; return; }
            last = new InvalidOperationException($"bmc-sim.sh start failed ({rc}): {output}");
        }
        throw last!;
    }

    /// <summary>Replaces the DCMI script (read by the simulator at every request), whole: a request meanwhile reads the old or the new.</summary>
    public void Script(string script) => AtomicFile.WriteAllText(PathOf("bmc.script"), script + "\n");

    /// <summary>Sets the Watts sensor's file (the simulator polls it every 100 ms), whole.</summary>
    public void SensorWatts(int watts) => AtomicFile.WriteAllText(PathOf("sensor_watts"), watts + "\n");

    /// <summary>Stops the simulator's process (SIGSTOP): the BMC no longer answers anything until <see cref="Resume"/>.</summary>
    public void Hang() => Signal("STOP");

    public void Resume() => Signal("CONT");

    private void Signal(string sig) => Run("kill", $"-{sig}", Pid.ToString());

    public override void Dispose()
    {
        Run(ScriptPath, "stop", Root);
        base.Dispose();
    }

    private static int FreeUdpPort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    private static (int Rc, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Alumet.Hpc.sln"))) return d.FullName;
        throw new InvalidOperationException("repository root (Alumet.Hpc.sln) not found above the test binaries");
    }
}
