using System.Diagnostics;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// <c>alumet-hpc exec</c> as a user runs it: the native binary over a generated powercap tree that the test moves
/// while the measured command runs. Every energy is known to the µJ.
/// </summary>
public class ExecBinaryTests
{
    private const ulong MaxRange = 262_143_328_850; // a real max_energy_range_uj

    internal static TestInstallation NewInstall(string extraSampler = "") =>
        new(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\n" + extraSampler);

    /// <summary>A running <c>alumet-hpc exec</c> whose command waits until <see cref="Finish"/> is called.</summary>
    internal sealed class RunningExec : IDisposable
    {
        private readonly Process _process;
        private readonly string _stopFile;
        private readonly Task<string> _stderr;
        private readonly Task<string> _stdout;

        public RunningExec(TestInstallation install, string jobId, params string[] extraArgs)
        {
            _stopFile = install.PathOf($"stop-{jobId}");
            var psi = new ProcessStartInfo(TestInstallation.Binary())
            {
                RedirectStandardError = true, RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false,
            };
            foreach (string a in new[] { "exec", "--config", install.ConfigPath, "--job-id", jobId }.Concat(extraArgs)
                         .Concat(["--", "sh", "-c", $"while [ ! -e '{_stopFile}' ]; do sleep 0.02; done"]))
                psi.ArgumentList.Add(a);
            _process = Process.Start(psi)!;
            _process.StandardInput.Close();
            _stderr = _process.StandardError.ReadToEndAsync();
            _stdout = _process.StandardOutput.ReadToEndAsync();
        }

        public (int ExitCode, string Stdout, string Stderr) Finish()
        {
            File.WriteAllText(_stopFile, "");
            if (!_process.WaitForExit(60_000)) throw new TimeoutException("alumet-hpc exec did not exit within 60 s");
            return (_process.ExitCode, _stdout.Result, _stderr.Result);
        }

        public void Dispose()
        {
            if (!_process.HasExited) { File.WriteAllText(_stopFile, ""); _process.WaitForExit(30_000); }
            _process.Dispose();
        }
    }

    internal static void WaitFor(Func<bool> condition, string what, double seconds = 20)
    {
        var end = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > end) throw new TimeoutException($"timed out waiting for {what}");
            Thread.Sleep(10);
        }
    }

    /// <summary>Flushed spool records of one consumer and resource kind (empty while the spool does not exist yet).</summary>
    internal static List<SpoolRecord> Flushed(string stateDir, string consumer, string kind)
    {
        if (!File.Exists(Path.Combine(stateDir, SpoolWriter.MetaFile))) return [];
        var meta = SpoolWriter.ReadMeta(stateDir);
        return SpoolReader.ReadAll(stateDir)
            .Where(r => r.Series < meta.Series.Count && meta.Series[r.Series] is { } s && s.Consumer == consumer && s.ResourceKind == kind)
            .ToList();
    }

    internal static object? Scalar(string sql)
    {
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    [Fact]
    public void ACounterResetMidRunIsRejectedFlaggedAndNotCounted()
    {
        using var install = NewInstall();
        const ulong e0 = 200_000_000_000; // 200 kJ: a reset taken for a wrap would add 62_143_328_851 µJ
        install.Powercap.SetEnergy("intel-rapl:0", e0);
        string id = ExecIds.Next();
        string state = Path.Combine(install.Config.Paths.StateDir, "exec", id);
        using var exec = new RunningExec(install, id, "--no-report");
        WaitFor(() => Flushed(state, "node", "cpu_package").Count > 0, "the first flushed records (counters primed)");

        install.Powercap.SetEnergy("intel-rapl:0", e0 + 3_000_000);               // +3 J
        WaitFor(() => Flushed(state, "node", "cpu_package").Sum(r => r.Value) == 3_000_000, "the 3 J in the spool");
        install.Powercap.SetEnergy("intel-rapl:0", 1_000);                          // driver reload: counter restarts
        WaitFor(() => Flushed(state, "node", "cpu_package").Any(r => (r.Flags & SpoolFlags.Implausible) != 0), "the flagged reset in the spool");
        install.Powercap.SetEnergy("intel-rapl:0", 2_001_000);                      // +2 J after the reset
        WaitFor(() => Flushed(state, "node", "cpu_package").Sum(r => r.Value) == 5_000_000, "the 2 J after the reset in the spool");
        var (rc, _, stderr) = exec.Finish();
        Assert.True(rc == 0, stderr);

        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(id));
        Assert.Equal(5.0, row.Energy.PackageJ, 12);
        Assert.Equal(5.0, row.TotalEnergyJ, 12);
        Assert.Equal(JobStatus.Partial, row.Status);
        Assert.Contains("1 interval(s) held an impossible counter jump (a reset, or more than max_power_w) that was rejected, not counted", row.Reason);
        Assert.Equal(0, row.WrapAmbiguous);

        string pq = row.ParquetPath;
        Assert.Equal(5.0, Convert.ToDouble(Scalar($"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{pq}') WHERE consumer = 'node' AND resource_kind = 'cpu_package'")), 9);
        Assert.Equal(5.0, Convert.ToDouble(Scalar($"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{pq}') WHERE consumer = 'job:{id}' AND resource_kind = 'cpu_package'")), 9);
        // The flag is on exactly one row of the node's and one of the job's package series, on no other domain.
        Assert.Equal(1L, Convert.ToInt64(Scalar($"SELECT count(*) FROM read_parquet('{pq}') WHERE (flags & 4) <> 0 AND consumer = 'node'")));
        Assert.Equal(1L, Convert.ToInt64(Scalar($"SELECT count(*) FROM read_parquet('{pq}') WHERE (flags & 4) <> 0 AND consumer = 'job:{id}'")));
        Assert.Equal(0L, Convert.ToInt64(Scalar($"SELECT count(*) FROM read_parquet('{pq}') WHERE (flags & 4) <> 0 AND resource_kind <> 'cpu_package'")));

        // The report says it.
        var report = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["report", "--job", id, "--config", install.ConfigPath])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string text = report.StandardOutput.ReadToEnd() + report.StandardError.ReadToEnd();
        report.WaitForExit();
        Assert.Contains("impossible counter jump", text);
    }

    [Fact]
    public void AMissingCommandIsOneSentenceExit127AndNoRowNoParquet()
    {
        using var install = NewInstall();
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", install.ConfigPath, "--job-id", ExecIds.Next(), "--", "no-such-program-alumet", "--flag"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(127, p.ExitCode);
        Assert.Equal("", stdout);
        Assert.Equal("alumet-hpc: exec: 'no-such-program-alumet': command not found in PATH; check the name, or give the program's path (nothing was measured)\n", stderr);
        Assert.False(File.Exists(install.Config.Paths.Database), "no accounting row");
        Assert.False(Directory.Exists(install.Config.Paths.DataDir), "no Parquet");
    }
}
