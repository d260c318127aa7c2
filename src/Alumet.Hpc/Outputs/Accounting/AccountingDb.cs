using System.Text;
using Alumet.Hpc.Outputs.Carbon;
using Alumet.Hpc.Outputs.Uncertainty;
using Microsoft.Data.Sqlite;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>Filter of <see cref="AccountingDb.Query"/>; null/empty members do not filter.</summary>
public sealed record JobQuery(
    IReadOnlyList<string>? JobIds = null, string? User = null, int? Uid = null, string? Cluster = null, string? Scheduler = null, int Limit = 10_000);

/// <summary>
/// The accounting database (SQLite): one row per (cluster, scheduler, job_id, node) plus a child table of steps.
/// Many epilogs may finalize at once: a busy timeout and a retry loop around every write transaction; writes take
/// the lock up front (BEGIN IMMEDIATE) so two writers never deadlock on a lock upgrade.
/// Journal: rollback (DELETE), deliberately not WAL. Users run alumet-report without root, and a reader of a WAL
/// database must create or write the -shm/-wal files: once the last writer has closed (files removed), a non-root
/// reader in the root-owned directory fails with SQLITE_READONLY (tested with sqlite 3.40). A rollback journal
/// needs only read access to the file for readers, also works on the NFS mounts some sites use, and one row per
/// job end is far below what it sustains (test ConcurrentWritersAllLand).
/// Schema changes are an ordered list of migrations tracked by <c>PRAGMA user_version</c>.
/// </summary>
public sealed class AccountingDb : IDisposable
{
    /// <summary>Migration i brings the schema from version i to i+1. Append only; never edit a released entry.</summary>
    internal static readonly string[] Migrations =
    [
        // v1
        """
        CREATE TABLE jobs (
            cluster TEXT NOT NULL,
            scheduler TEXT NOT NULL,
            job_id TEXT NOT NULL,
            node TEXT NOT NULL,
            user TEXT NOT NULL,
            uid INTEGER NOT NULL,
            start_time TEXT NOT NULL DEFAULT '',      -- UTC ISO-8601 (µs), '' when unknown
            end_time TEXT NOT NULL DEFAULT '',
            elapsed_s REAL NOT NULL DEFAULT 0,
            energy_package_j REAL NOT NULL DEFAULT 0,
            energy_core_j REAL NOT NULL DEFAULT 0,
            energy_uncore_j REAL NOT NULL DEFAULT 0,
            energy_dram_j REAL NOT NULL DEFAULT 0,
            energy_psys_j REAL NOT NULL DEFAULT 0,
            energy_gpu_j REAL NOT NULL DEFAULT 0,
            total_energy_j REAL NOT NULL DEFAULT 0,   -- package + dram + gpu
            ave_power_w REAL NOT NULL DEFAULT 0,
            max_power_w REAL NOT NULL DEFAULT 0,
            frequency_hz REAL NOT NULL DEFAULT 0,     -- highest source rate
            frequency TEXT NOT NULL DEFAULT '',       -- every source: rapl=1000,nvml=20
            interfaces TEXT NOT NULL DEFAULT '',
            estimated INTEGER NOT NULL DEFAULT 0,
            estimate_model TEXT NOT NULL DEFAULT '',
            perimeter TEXT NOT NULL DEFAULT '',
            attribution_mode TEXT NOT NULL DEFAULT '',
            storage_period_ms INTEGER NOT NULL DEFAULT 0,
            sample_count INTEGER NOT NULL DEFAULT 0,
            wrap_ambiguous INTEGER NOT NULL DEFAULT 0,
            read_errors INTEGER NOT NULL DEFAULT 0,
            node_energy_j REAL NOT NULL DEFAULT 0,
            unattributed_energy_j REAL NOT NULL DEFAULT 0,
            other_jobs_energy_j REAL NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('complete','partial','not_measured')),
            reason TEXT NOT NULL DEFAULT '',
            parquet_path TEXT NOT NULL DEFAULT '',
            tool_version TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (cluster, scheduler, job_id, node)
        );
        CREATE INDEX jobs_by_job ON jobs(job_id);
        CREATE INDEX jobs_by_user ON jobs(user);
        CREATE INDEX jobs_by_uid ON jobs(uid);
        CREATE TABLE steps (
            cluster TEXT NOT NULL,
            scheduler TEXT NOT NULL,
            job_id TEXT NOT NULL,
            node TEXT NOT NULL,
            step_id TEXT NOT NULL,                    -- 1234.batch, 1234.0
            start_time TEXT NOT NULL DEFAULT '',
            end_time TEXT NOT NULL DEFAULT '',
            elapsed_s REAL NOT NULL DEFAULT 0,
            energy_package_j REAL NOT NULL DEFAULT 0,
            energy_core_j REAL NOT NULL DEFAULT 0,
            energy_uncore_j REAL NOT NULL DEFAULT 0,
            energy_dram_j REAL NOT NULL DEFAULT 0,
            energy_psys_j REAL NOT NULL DEFAULT 0,
            energy_gpu_j REAL NOT NULL DEFAULT 0,
            total_energy_j REAL NOT NULL DEFAULT 0,
            ave_power_w REAL NOT NULL DEFAULT 0,
            max_power_w REAL NOT NULL DEFAULT 0,
            sample_count INTEGER NOT NULL DEFAULT 0,
            wrap_ambiguous INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (cluster, scheduler, job_id, node, step_id),
            FOREIGN KEY (cluster, scheduler, job_id, node) REFERENCES jobs(cluster, scheduler, job_id, node) ON DELETE CASCADE
        );
        """,
        // v2: uncertainty of every total (docs/uncertainty.md), facility energy and CO2e (docs/carbon.md).
        // energy_u_k = 0 marks rows written before: their uncertainty is unknown, not zero. Standard uncertainties
        // are kept by component so that nodes combine correctly (systematic linearly, random in quadrature).
        """
        ALTER TABLE jobs ADD COLUMN energy_u_interfaces_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN energy_u_attribution_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN energy_u_random_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN energy_missed_max_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN energy_u_k REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN total_energy_u_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN facility_energy_j REAL;
        ALTER TABLE jobs ADD COLUMN facility_energy_u_j REAL;
        ALTER TABLE jobs ADD COLUMN co2e_g REAL;
        ALTER TABLE jobs ADD COLUMN co2e_u_g REAL;
        ALTER TABLE jobs ADD COLUMN carbon_basis TEXT NOT NULL DEFAULT '';
        ALTER TABLE jobs ADD COLUMN carbon_note TEXT NOT NULL DEFAULT '';
        ALTER TABLE steps ADD COLUMN energy_u_interfaces_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN energy_u_attribution_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN energy_u_random_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN energy_missed_max_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN energy_u_k REAL NOT NULL DEFAULT 0;
        ALTER TABLE steps ADD COLUMN total_energy_u_j REAL NOT NULL DEFAULT 0;
        """,
    ];

    public static int SchemaVersion => Migrations.Length;

    private const int SqliteBusy = 5, SqliteLocked = 6;
    private readonly SqliteConnection _con;

    public string Path { get; }

    private AccountingDb(string path, SqliteConnection con)
    {
        Path = path;
        _con = con;
    }

    /// <summary>Opens for writing: creates the directory (0755) and file (0644) when missing, migrates.</summary>
    public static AccountingDb Open(string path, int busyTimeoutMs = 10_000)
    {
        path = System.IO.Path.GetFullPath(path);
        CreateFile(path);
        var con = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false, // short-lived processes; a pooled handle would keep the file open after Dispose
            DefaultTimeout = Math.Max(1, busyTimeoutMs / 1000),
        }.ToString());
        var db = new AccountingDb(path, con);
        try
        {
            con.Open();
            db.Exec($"PRAGMA busy_timeout = {busyTimeoutMs};");
            db.Exec("PRAGMA foreign_keys = ON;");
            db.Migrate();
        }
        catch
        {
            db.Dispose();
            throw;
        }
        return db;
    }

    /// <summary>Opens an existing database for reading only (reports): never creates or migrates it.</summary>
    /// <exception cref="FileNotFoundException">No database at <paramref name="path"/>.</exception>
    public static AccountingDb OpenReadOnly(string path, int busyTimeoutMs = 10_000)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"no accounting database at {path}", path);
        var con = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false, DefaultTimeout = Math.Max(1, busyTimeoutMs / 1000),
        }.ToString());
        var db = new AccountingDb(path, con);
        try
        {
            con.Open();
            db.Exec($"PRAGMA busy_timeout = {busyTimeoutMs};");
            int v = db.UserVersion();
            if (v > SchemaVersion) throw new InvalidDataException($"{path}: schema version {v} is newer than this tool ({SchemaVersion})");
            if (v == 0) throw new InvalidDataException($"{path}: not an alumet-hpc accounting database (schema version 0)");
        }
        catch
        {
            db.Dispose();
            throw;
        }
        return db;
    }

    private static void CreateFile(string path)
    {
        if (File.Exists(path)) return;
        string? dir = System.IO.Path.GetDirectoryName(path);
        if (dir is not null && !Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(dir);
            else Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        try
        {
            // 0644: users read their rows through alumet-report (which filters by uid); only root writes.
            var o = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                o.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
            using var _ = new FileStream(path, o);
            if (!OperatingSystem.IsWindows())
                File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        catch (IOException) when (File.Exists(path))
        {
            // another writer created it first
        }
    }

    public int UserVersion()
    {
        using var cmd = _con.CreateCommand();
        cmd.CommandText = "PRAGMA user_version;";
        return Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private void Migrate()
    {
        int current = UserVersion();
        if (current > SchemaVersion) throw new InvalidDataException($"{Path}: schema version {current} is newer than this tool ({SchemaVersion})");
        if (current == SchemaVersion) return;
        Retry(() =>
        {
            using var tx = _con.BeginTransaction(); // IMMEDIATE: concurrent first-openers serialize here
            int v = UserVersion();                  // re-read under the lock: another process may have migrated
            if (v > SchemaVersion) throw new InvalidDataException($"{Path}: schema version {v} is newer than this tool ({SchemaVersion})");
            for (; v < SchemaVersion; v++)
            {
                using var cmd = _con.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = Migrations[v] + $"\nPRAGMA user_version = {v + 1};";
                cmd.ExecuteNonQuery();
            }
            tx.Commit();
        });
    }

    /// <summary>
    /// Inserts or updates the row of (cluster, scheduler, job id, node) and replaces its steps, atomically.
    /// Idempotent: the same record twice leaves one identical row. Precedence: a record replaces the stored one
    /// only when its status is at least as good (complete &gt; partial &gt; not_measured), so a late or repeated
    /// "not_measured" (e.g. a retried epilog that found no spool) never erases measured energy.
    /// </summary>
    /// <returns>True when the record was written, false when a better status was already stored.</returns>
    public bool Upsert(JobRecord r)
    {
        if (!JobStatus.IsValid(r.Status)) throw new ArgumentException($"invalid status '{r.Status}'", nameof(r));
        bool written = false;
        Retry(() =>
        {
            written = false;
            using var tx = _con.BeginTransaction();
            using (var check = Command(tx, "SELECT status FROM jobs WHERE cluster=$c AND scheduler=$s AND job_id=$j AND node=$n;"))
            {
                Key(check, r);
                if (check.ExecuteScalar() is string existing && JobStatus.Rank(existing) > JobStatus.Rank(r.Status))
                {
                    tx.Rollback();
                    return;
                }
            }
            using (var up = Command(tx, """
                INSERT INTO jobs (cluster, scheduler, job_id, node, user, uid, start_time, end_time, elapsed_s,
                    energy_package_j, energy_core_j, energy_uncore_j, energy_dram_j, energy_psys_j, energy_gpu_j, total_energy_j,
                    ave_power_w, max_power_w, frequency_hz, frequency, interfaces, estimated, estimate_model, perimeter,
                    attribution_mode, storage_period_ms, sample_count, wrap_ambiguous, read_errors,
                    node_energy_j, unattributed_energy_j, other_jobs_energy_j, status, reason, parquet_path, tool_version, updated_at,
                    energy_u_interfaces_j, energy_u_attribution_j, energy_u_random_j, energy_missed_max_j, energy_u_k, total_energy_u_j,
                    facility_energy_j, facility_energy_u_j, co2e_g, co2e_u_g, carbon_basis, carbon_note)
                VALUES ($c, $s, $j, $n, $user, $uid, $start, $end, $elapsed,
                    $pkg, $core, $uncore, $dram, $psys, $gpu, $total,
                    $ave, $max, $hz, $freq, $ifaces, $est, $model, $perimeter,
                    $attr, $period, $samples, $wrap, $rerr,
                    $nodej, $unattr, $other, $status, $reason, $parquet, $version, $updated,
                    $ui, $ua, $ur, $um, $uk, $utotal,
                    $fac, $facu, $co2, $co2u, $cbasis, $cnote)
                ON CONFLICT (cluster, scheduler, job_id, node) DO UPDATE SET
                    user=excluded.user, uid=excluded.uid, start_time=excluded.start_time, end_time=excluded.end_time,
                    elapsed_s=excluded.elapsed_s, energy_package_j=excluded.energy_package_j, energy_core_j=excluded.energy_core_j,
                    energy_uncore_j=excluded.energy_uncore_j, energy_dram_j=excluded.energy_dram_j, energy_psys_j=excluded.energy_psys_j,
                    energy_gpu_j=excluded.energy_gpu_j, total_energy_j=excluded.total_energy_j, ave_power_w=excluded.ave_power_w,
                    max_power_w=excluded.max_power_w, frequency_hz=excluded.frequency_hz, frequency=excluded.frequency,
                    interfaces=excluded.interfaces, estimated=excluded.estimated, estimate_model=excluded.estimate_model,
                    perimeter=excluded.perimeter, attribution_mode=excluded.attribution_mode, storage_period_ms=excluded.storage_period_ms,
                    sample_count=excluded.sample_count, wrap_ambiguous=excluded.wrap_ambiguous, read_errors=excluded.read_errors,
                    node_energy_j=excluded.node_energy_j, unattributed_energy_j=excluded.unattributed_energy_j,
                    other_jobs_energy_j=excluded.other_jobs_energy_j, status=excluded.status, reason=excluded.reason,
                    parquet_path=excluded.parquet_path, tool_version=excluded.tool_version, updated_at=excluded.updated_at,
                    energy_u_interfaces_j=excluded.energy_u_interfaces_j, energy_u_attribution_j=excluded.energy_u_attribution_j,
                    energy_u_random_j=excluded.energy_u_random_j, energy_missed_max_j=excluded.energy_missed_max_j,
                    energy_u_k=excluded.energy_u_k, total_energy_u_j=excluded.total_energy_u_j,
                    facility_energy_j=excluded.facility_energy_j, facility_energy_u_j=excluded.facility_energy_u_j,
                    co2e_g=excluded.co2e_g, co2e_u_g=excluded.co2e_u_g, carbon_basis=excluded.carbon_basis, carbon_note=excluded.carbon_note;
                """))
            {
                Key(up, r);
                var p = up.Parameters;
                p.AddWithValue("$user", r.User);
                p.AddWithValue("$uid", r.Uid);
                p.AddWithValue("$start", JobRecord.FormatTime(r.Start));
                p.AddWithValue("$end", JobRecord.FormatTime(r.End));
                p.AddWithValue("$elapsed", r.ElapsedS);
                Energies(up, r.Energy);
                p.AddWithValue("$ave", r.AvePowerW);
                p.AddWithValue("$max", r.MaxPowerW);
                p.AddWithValue("$hz", r.FrequencyHz);
                p.AddWithValue("$freq", r.Frequency);
                p.AddWithValue("$ifaces", r.Interfaces);
                p.AddWithValue("$est", r.Estimated ? 1 : 0);
                p.AddWithValue("$model", r.EstimateModel);
                p.AddWithValue("$perimeter", r.Perimeter);
                p.AddWithValue("$attr", r.AttributionMode);
                p.AddWithValue("$period", r.StoragePeriodMs);
                p.AddWithValue("$samples", r.SampleCount);
                p.AddWithValue("$wrap", r.WrapAmbiguous);
                p.AddWithValue("$rerr", r.ReadErrors);
                p.AddWithValue("$nodej", r.NodeEnergyJ);
                p.AddWithValue("$unattr", r.UnattributedEnergyJ);
                p.AddWithValue("$other", r.OtherJobsEnergyJ);
                p.AddWithValue("$status", r.Status);
                p.AddWithValue("$reason", r.Reason);
                p.AddWithValue("$parquet", r.ParquetPath);
                p.AddWithValue("$version", r.ToolVersion);
                p.AddWithValue("$updated", JobRecord.FormatTime(DateTime.UtcNow));
                Uncertainty(up, r.Uncertainty);
                p.AddWithValue("$fac", (object?)r.Carbon.FacilityEnergyJ ?? DBNull.Value);
                p.AddWithValue("$facu", (object?)r.Carbon.FacilityEnergyUJ ?? DBNull.Value);
                p.AddWithValue("$co2", (object?)r.Carbon.Co2eG ?? DBNull.Value);
                p.AddWithValue("$co2u", (object?)r.Carbon.Co2eUG ?? DBNull.Value);
                p.AddWithValue("$cbasis", r.Carbon.Basis);
                p.AddWithValue("$cnote", r.Carbon.Note);
                up.ExecuteNonQuery();
            }
            using (var del = Command(tx, "DELETE FROM steps WHERE cluster=$c AND scheduler=$s AND job_id=$j AND node=$n;"))
            {
                Key(del, r);
                del.ExecuteNonQuery();
            }
            foreach (var st in r.Steps)
            {
                using var ins = Command(tx, """
                    INSERT INTO steps (cluster, scheduler, job_id, node, step_id, start_time, end_time, elapsed_s,
                        energy_package_j, energy_core_j, energy_uncore_j, energy_dram_j, energy_psys_j, energy_gpu_j, total_energy_j,
                        ave_power_w, max_power_w, sample_count, wrap_ambiguous,
                        energy_u_interfaces_j, energy_u_attribution_j, energy_u_random_j, energy_missed_max_j, energy_u_k, total_energy_u_j)
                    VALUES ($c, $s, $j, $n, $step, $start, $end, $elapsed, $pkg, $core, $uncore, $dram, $psys, $gpu, $total,
                        $ave, $max, $samples, $wrap, $ui, $ua, $ur, $um, $uk, $utotal);
                    """);
                Key(ins, r);
                var p = ins.Parameters;
                p.AddWithValue("$step", st.StepId);
                p.AddWithValue("$start", JobRecord.FormatTime(st.Start));
                p.AddWithValue("$end", JobRecord.FormatTime(st.End));
                p.AddWithValue("$elapsed", st.ElapsedS);
                Energies(ins, st.Energy);
                p.AddWithValue("$ave", st.AvePowerW);
                p.AddWithValue("$max", st.MaxPowerW);
                p.AddWithValue("$samples", st.SampleCount);
                p.AddWithValue("$wrap", st.WrapAmbiguous);
                Uncertainty(ins, st.Uncertainty);
                ins.ExecuteNonQuery();
            }
            tx.Commit();
            written = true;
        });
        return written;
    }

    /// <summary>Every node row of a job (optionally restricted to one cluster/scheduler), with steps.</summary>
    public IReadOnlyList<JobRecord> GetJob(string jobId, string? cluster = null, string? scheduler = null) =>
        Query(new JobQuery([jobId], Cluster: cluster, Scheduler: scheduler));

    public IReadOnlyList<JobRecord> GetByUser(string user, string? cluster = null) => Query(new JobQuery(User: user, Cluster: cluster));

    /// <summary>Rows matching every given filter, ordered by cluster, job id (numeric first), node.</summary>
    public IReadOnlyList<JobRecord> Query(JobQuery q)
    {
        var sql = new StringBuilder("SELECT * FROM jobs WHERE 1=1");
        using var cmd = _con.CreateCommand();
        if (q.JobIds is { Count: > 0 })
        {
            sql.Append(" AND job_id IN (");
            for (int i = 0; i < q.JobIds.Count; i++)
            {
                sql.Append(i == 0 ? "" : ",").Append("$j").Append(i);
                cmd.Parameters.AddWithValue("$j" + i, q.JobIds[i]);
            }
            sql.Append(')');
        }
        if (!string.IsNullOrEmpty(q.User)) { sql.Append(" AND user = $user"); cmd.Parameters.AddWithValue("$user", q.User); }
        if (q.Uid is { } uid) { sql.Append(" AND uid = $uid"); cmd.Parameters.AddWithValue("$uid", uid); }
        if (!string.IsNullOrEmpty(q.Cluster)) { sql.Append(" AND cluster = $cluster"); cmd.Parameters.AddWithValue("$cluster", q.Cluster); }
        if (!string.IsNullOrEmpty(q.Scheduler)) { sql.Append(" AND scheduler = $sched"); cmd.Parameters.AddWithValue("$sched", q.Scheduler); }
        sql.Append(" ORDER BY cluster, scheduler, length(job_id), job_id, node LIMIT $limit;");
        cmd.Parameters.AddWithValue("$limit", q.Limit);
        cmd.CommandText = sql.ToString();

        var rows = new List<JobRecord>();
        using (var rd = cmd.ExecuteReader())
        {
            while (rd.Read())
            {
                var r = new JobRecord(
                    Str(rd, "cluster"), Str(rd, "scheduler"), Str(rd, "job_id"), Str(rd, "node"), Str(rd, "user"), rd.GetInt32(rd.GetOrdinal("uid")),
                    JobRecord.ParseTime(Str(rd, "start_time")), JobRecord.ParseTime(Str(rd, "end_time")), Dbl(rd, "elapsed_s"),
                    ReadEnergies(rd), Dbl(rd, "ave_power_w"), Dbl(rd, "max_power_w"),
                    Dbl(rd, "frequency_hz"), Str(rd, "frequency"), Str(rd, "interfaces"), Lng(rd, "estimated") != 0, Str(rd, "estimate_model"),
                    Str(rd, "perimeter"), Str(rd, "attribution_mode"), (int)Lng(rd, "storage_period_ms"),
                    Lng(rd, "sample_count"), Lng(rd, "wrap_ambiguous"), Lng(rd, "read_errors"),
                    Dbl(rd, "node_energy_j"), Dbl(rd, "unattributed_energy_j"), Dbl(rd, "other_jobs_energy_j"),
                    Str(rd, "status"), Str(rd, "reason"), Str(rd, "parquet_path"), Str(rd, "tool_version"), [])
                {
                    Uncertainty = ReadUncertainty(rd),
                    Carbon = new FacilityCarbon(NDbl(rd, "facility_energy_j"), NDbl(rd, "facility_energy_u_j"), NDbl(rd, "co2e_g"), NDbl(rd, "co2e_u_g"),
                        Str(rd, "carbon_basis"), Str(rd, "carbon_note")),
                };
                rows.Add(r);
            }
        }
        return rows.Select(r => r with { Steps = ReadSteps(r) }).ToList();
    }

    private List<StepRecord> ReadSteps(JobRecord r)
    {
        using var cmd = _con.CreateCommand();
        cmd.CommandText = "SELECT * FROM steps WHERE cluster=$c AND scheduler=$s AND job_id=$j AND node=$n;";
        Key(cmd, r);
        var steps = new List<StepRecord>();
        using var rd = cmd.ExecuteReader();
        while (rd.Read())
            steps.Add(new StepRecord(Str(rd, "step_id"), JobRecord.ParseTime(Str(rd, "start_time")), JobRecord.ParseTime(Str(rd, "end_time")),
                Dbl(rd, "elapsed_s"), ReadEnergies(rd), Dbl(rd, "ave_power_w"), Dbl(rd, "max_power_w"), Lng(rd, "sample_count"), Lng(rd, "wrap_ambiguous"))
            {
                Uncertainty = ReadUncertainty(rd),
            });
        steps.Sort((a, b) => StepOrder.Compare(a.StepId, b.StepId));
        return steps;
    }

    private static DomainEnergies ReadEnergies(SqliteDataReader rd) => new(
        Dbl(rd, "energy_package_j"), Dbl(rd, "energy_core_j"), Dbl(rd, "energy_uncore_j"),
        Dbl(rd, "energy_dram_j"), Dbl(rd, "energy_psys_j"), Dbl(rd, "energy_gpu_j"));

    private static EnergyUncertainty ReadUncertainty(SqliteDataReader rd) => new(
        Dbl(rd, "energy_u_interfaces_j"), Dbl(rd, "energy_u_attribution_j"), Dbl(rd, "energy_u_random_j"),
        Dbl(rd, "energy_missed_max_j"), Dbl(rd, "energy_u_k"));

    private static void Uncertainty(SqliteCommand cmd, EnergyUncertainty u)
    {
        var p = cmd.Parameters;
        p.AddWithValue("$ui", u.InterfacesJ);
        p.AddWithValue("$ua", u.AttributionJ);
        p.AddWithValue("$ur", u.RandomJ);
        p.AddWithValue("$um", u.MissedJ);
        p.AddWithValue("$uk", u.CoverageFactor);
        p.AddWithValue("$utotal", u.ExpandedJ);
    }

    private static double? NDbl(SqliteDataReader rd, string c) => rd.IsDBNull(rd.GetOrdinal(c)) ? null : rd.GetDouble(rd.GetOrdinal(c));

    private static string Str(SqliteDataReader rd, string c) => rd.IsDBNull(rd.GetOrdinal(c)) ? "" : rd.GetString(rd.GetOrdinal(c));
    private static double Dbl(SqliteDataReader rd, string c) => rd.IsDBNull(rd.GetOrdinal(c)) ? 0 : rd.GetDouble(rd.GetOrdinal(c));
    private static long Lng(SqliteDataReader rd, string c) => rd.IsDBNull(rd.GetOrdinal(c)) ? 0 : rd.GetInt64(rd.GetOrdinal(c));

    private SqliteCommand Command(SqliteTransaction tx, string sql)
    {
        var cmd = _con.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd;
    }

    private static void Key(SqliteCommand cmd, JobRecord r)
    {
        cmd.Parameters.AddWithValue("$c", r.Cluster);
        cmd.Parameters.AddWithValue("$s", r.Scheduler);
        cmd.Parameters.AddWithValue("$j", r.JobId);
        cmd.Parameters.AddWithValue("$n", r.Node);
    }

    private static void Energies(SqliteCommand cmd, DomainEnergies e)
    {
        var p = cmd.Parameters;
        p.AddWithValue("$pkg", e.PackageJ);
        p.AddWithValue("$core", e.CoreJ);
        p.AddWithValue("$uncore", e.UncoreJ);
        p.AddWithValue("$dram", e.DramJ);
        p.AddWithValue("$psys", e.PsysJ);
        p.AddWithValue("$gpu", e.GpuJ);
        p.AddWithValue("$total", e.TotalJ);
    }

    private void Exec(string sql)
    {
        using var cmd = _con.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    /// <summary>Runs a write transaction again while SQLite reports BUSY/LOCKED (on top of busy_timeout), with jittered backoff.</summary>
    private void Retry(Action action, int attempts = 50)
    {
        for (int i = 1; ; i++)
        {
            try
            {
                action();
                return;
            }
            catch (SqliteException e) when ((e.SqliteErrorCode == SqliteBusy || e.SqliteErrorCode == SqliteLocked) && i < attempts)
            {
                Thread.Sleep(Random.Shared.Next(5, 20 + 10 * Math.Min(i, 20)));
            }
        }
    }

    public void Dispose() => _con.Dispose();
}
