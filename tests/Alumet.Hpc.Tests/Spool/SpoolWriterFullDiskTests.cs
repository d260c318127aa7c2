using System.Diagnostics;
using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Outputs;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>The spool on a real full filesystem: a small tmpfs (root only; skipped with the reason otherwise).</summary>
[Collection("Log")]
public sealed class SpoolWriterFullDiskTests : IDisposable
{
    private readonly string _mount = Directory.CreateTempSubdirectory("alumet-full-").FullName;
    private readonly string _log = Path.GetTempFileName();
    private bool _mounted;

    public void Dispose()
    {
        Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        if (_mounted) Run("umount", _mount);
        Directory.Delete(_mount, recursive: true);
        File.Delete(_log);
    }

    private static int Run(string exe, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(exe, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        p.WaitForExit();
        return p.ExitCode;
    }

    [SkippableFact]
    public void ADiskFullMidJobKeepsEveryTotalLogsOnceAndLosesNothingOnceSpaceReturns()
    {
        Skip.If(Environment.UserName != "root", "needs root to mount a small tmpfs (a real full filesystem)");
        Assert.Equal(0, Run("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", _mount));
        _mounted = true;
        Log.Configure(_log, "alumet-hpc", syslog: false, stderr: false);

        string dir = Path.Combine(_mount, "job");
        var meta = TestSpools.Meta("31");
        meta.Series.Add(TestSpools.S("node", "cpu_package", "0"));
        meta.Series.Add(TestSpools.S("job:31", "cpu_package", "0"));
        long sec = 1_000_000_000, expected0 = 0, expected1 = 0;
        using var w = new SpoolWriter(dir, meta, bufferRecords: 16);
        void Period(int t)
        {
            w.Append(TestSpools.R(TestSpools.T0 + t * sec, sec, 1_000 + t, 0));
            w.Append(TestSpools.R(TestSpools.T0 + t * sec, sec, 10 + t, 1));
            expected0 += 1_000 + t;
            expected1 += 10 + t;
        }
        for (int t = 1; t <= 4; t++) Period(t);
        w.Flush();

        // Fill the filesystem to the last byte.
        string filler = Path.Combine(_mount, "filler");
        using (var f = new FileStream(filler, FileMode.Create))
        {
            var block = new byte[4096];
            try { while (true) f.Write(block); } catch (IOException) { }
        }
        for (int t = 5; t <= 200; t++) { Period(t); if (t % 2 == 0) w.Flush(); } // 392 records through a 16-record buffer
        File.Delete(filler);
        for (int t = 201; t <= 202; t++) Period(t);
        w.Flush();

        var records = SpoolReader.ReadAll(dir).ToList();
        Assert.Equal(expected0, records.Where(r => r.Series == 0).Sum(r => r.Value));
        Assert.Equal(expected1, records.Where(r => r.Series == 1).Sum(r => r.Value));
        Assert.Equal(202 * sec, records.Where(r => r.Series == 1).Sum(r => r.IntervalNs)); // the time covered is whole too
        var lines = File.ReadAllLines(_log);
        Assert.Equal(2, lines.Length);
        Assert.Contains("write failed (", lines[0]);
        Assert.Contains("writing again after", lines[1]);
        var episode = Assert.Single(w.WriteFailures);
        Assert.StartsWith("state dir full from ", episode);
    }
}
