using System.CommandLine;
using Alumet.Hpc.Outputs.Parquet;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc parquet repair|check FILE|DIR...</c>: maintenance and verification of the Parquet files already written.
/// Both run as root on directories users own: symbolic links are never followed. <c>parquet export SPOOL FILE</c>
/// converts a spool as a finalization does (an admin's re-export of a kept spool; bench/parquet.sh measures it).
/// </summary>
public static class ParquetCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("path") { Description = "Parquet files, or directories searched recursively (symbolic links are not followed)", Arity = ArgumentArity.OneOrMore };
        var repair = new Command("repair", "Fix the timestamp statistics of files written before schema 2 (they made time filters drop rows); keeps owner and mode") { paths };
        repair.SetAction(pr => Repair(pr.GetValue(paths) ?? [], Console.Out, Console.Error));
        var check = new Command("check", "Verify, for every domain and interval of every job or node file, node = jobs + unattributed exactly on the stored integers; exit 0 all conserve, 1 a violation or an unreadable file, 2 a bad path") { paths };
        check.SetAction(pr => Check(pr.GetValue(paths) ?? [], Console.Out, Console.Error));
        var spool = new Argument<string>("spool") { Description = "A job's state directory (meta.json + spool.bin), e.g. one kept after a failed finalization" };
        var target = new Argument<string>("file") { Description = "The Parquet file to write (replaced atomically)" };
        var values = new Option<string>("--values") { Description = "raw (energy_raw + joules_per_unit, the default) or joules (adds energy_j)", DefaultValueFactory = _ => "raw" };
        var export = new Command("export", "Convert a spool to a Parquet file as the job's finalization does (row groups streamed: memory does not grow with the job); prints rows, row groups and bytes") { spool, target, values };
        export.SetAction(pr => Export(pr.GetValue(spool)!, pr.GetValue(target)!, pr.GetValue(values) ?? "raw", Console.Out, Console.Error));
        return new Command("parquet", "Parquet file maintenance") { repair, check, export };
    }

    /// <summary>Exit 0 written, 1 the spool could not be read or the file written (one sentence), 2 a bad argument.</summary>
    public static int Export(string spoolDir, string file, string values, TextWriter output, TextWriter error)
    {
        if (values is not ("raw" or "joules"))
        {
            error.WriteLine($"alumet-hpc parquet export: --values must be raw or joules, not '{values}'");
            return 2;
        }
        if (!File.Exists(Path.Combine(spoolDir, Spool.SpoolWriter.MetaFile)))
        {
            error.WriteLine($"alumet-hpc parquet export: {spoolDir}: no {Spool.SpoolWriter.MetaFile}: not a job's spool directory");
            return 2;
        }
        try
        {
            var layout = values == "joules" ? ParquetValueLayout.Joules : ParquetValueLayout.RawCounts;
            var r = ParquetExporter.ExportAsync(spoolDir, file, new ParquetExportOptions(Layout: layout)).GetAwaiter().GetResult();
            output.WriteLine($"{r.Path}: {r.Rows} rows, {r.RowGroups} row groups, {r.Bytes} bytes ({r.BytesPerRow:F3} per row)");
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or System.Text.Json.JsonException)
        {
            error.WriteLine($"alumet-hpc parquet export: {spoolDir}: {e.Message.Split('\n')[0].Trim()}");
            return 1;
        }
    }

    /// <summary>One line per file; exit 0 when nothing failed, 1 when a file could not be repaired, 2 when a path does not exist.</summary>
    public static int Repair(IEnumerable<string> paths, TextWriter output, TextWriter error)
    {
        int failed = 0, counted = 0;
        foreach (var path in paths)
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                error.WriteLine($"alumet-hpc parquet repair: {path}: no such file or directory");
                return 2;
            }
            foreach (var file in ParquetRepair.Files(path))
            {
                var r = ParquetRepair.RepairAsync(file).GetAwaiter().GetResult();
                counted++;
                string word = r.Outcome switch
                {
                    RepairOutcome.Repaired => "repaired",
                    RepairOutcome.AlreadyCorrect => "ok",
                    RepairOutcome.Skipped => "skipped",
                    _ => "failed",
                };
                (r.Outcome == RepairOutcome.Failed ? error : output).WriteLine($"{word}: {r.Path}: {r.Detail}");
                if (r.Outcome == RepairOutcome.Failed) failed++;
            }
        }
        output.WriteLine($"{counted} file(s), {failed} failed");
        return failed > 0 ? 1 : 0;
    }

    /// <summary>
    /// One line per file (<c>ok</c>, <c>violation</c>, <c>unchecked</c> when the file holds no split, <c>error</c>), then a
    /// total; exit 0 when every file conserves or has nothing to check, 1 on a violation or an unreadable file, 2 when a
    /// path does not exist or is a symbolic link (nothing is checked then).
    /// </summary>
    public static int Check(IReadOnlyList<string> paths, TextWriter output, TextWriter error)
    {
        foreach (var path in paths)
        {
            string? bad = !File.Exists(path) && !Directory.Exists(path) ? "no such file or directory"
                : new FileInfo(path).LinkTarget is not null ? "a symbolic link: not followed (give the real path)" : null;
            if (bad is null) continue;
            error.WriteLine($"alumet-hpc parquet check: {path}: {bad}");
            return 2;
        }
        int files = 0, ok = 0, violated = 0, nothing = 0, unreadable = 0;
        // Each argument under its real name (the admin's own links resolved once): a link met below it is then refused.
        foreach (var file in paths.Select(p => ParquetRows.RealPath(p) ?? p).SelectMany(ParquetRepair.Files))
        {
            var r = ParquetConservation.CheckAsync(file).GetAwaiter().GetResult();
            files++;
            switch (r.Outcome)
            {
                case ConservationOutcome.Conserves: ok++; output.WriteLine($"ok: {r.Path}: {r.Detail}"); break;
                case ConservationOutcome.NothingToCheck: nothing++; output.WriteLine($"unchecked: {r.Path}: {r.Detail}"); break;
                case ConservationOutcome.Violated: violated++; error.WriteLine($"violation: {r.Path}: {r.Detail}"); break;
                default: unreadable++; error.WriteLine($"error: {r.Path}: cannot be checked: {r.Detail}"); break;
            }
        }
        output.WriteLine($"{files} file(s): {ok} conserve, {violated} violate, {nothing} with nothing to check, {unreadable} unreadable");
        return violated + unreadable > 0 ? 1 : 0;
    }
}
