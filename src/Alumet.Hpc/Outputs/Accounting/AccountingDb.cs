using System.Data.Common;
using System.Globalization;
using System.Text;
using Alumet.Hpc.Outputs.Carbon;
using Alumet.Hpc.Outputs.Uncertainty;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>Which runs of a job <see cref="AccountingDb.Query"/> returns.</summary>
public enum RunSelection
{
    /// <summary>The latest run of each job: per node its newest run, without the rows of runs that ended before
    /// another run of the same job id started (a reused id). What a report shows by default.</summary>
    Latest,
    /// <summary>Every run (each row carries its <see cref="JobRecord.RunId"/>).</summary>
    All,
}

/// <summary>Filter of <see cref="AccountingDb.Stream"/>; null/empty members do not filter. Times are UTC.</summary>
/// <param name="Limit">At most this many rows; null = every row (reports stream them).</param>
/// <param name="Users">User names (any of them), besides <paramref name="User"/>.</param>
/// <param name="Clusters">Cluster names (any of them), besides <paramref name="Cluster"/>.</param>
/// <param name="Since">Rows that ended at or after this instant (sacct -S: the run overlaps the window).</param>
/// <param name="Until">Rows that started at or before this instant (sacct -E).</param>
/// <param name="Nodes">Jobs with a row on any of these nodes (every row of such a job is returned).</param>
/// <param name="WithSteps">False skips the steps table (sacct -X).</param>
/// <param name="Names">Job names (any of them, exact: sacct --name).</param>
public sealed record JobQuery(
    IReadOnlyList<string>? JobIds = null, string? User = null, int? Uid = null, string? Cluster = null, string? Scheduler = null, int? Limit = null,
    RunSelection Runs = RunSelection.Latest, string? RunId = null,
    IReadOnlyList<string>? Users = null, IReadOnlyList<string>? Clusters = null, DateTime? Since = null, DateTime? Until = null,
    IReadOnlyList<string>? Nodes = null, bool WithSteps = true, IReadOnlyList<string>? Names = null);

/// <summary>
/// The accounting database: one row per (cluster, scheduler, job_id, node, run_id) plus a child table of steps, on
/// SQLite (the embedded default, <see cref="SqliteBackend"/>) or PostgreSQL (clusters). One schema, one migration list
/// (<see cref="Schema"/>), one set of statements; the back end supplies only what differs (connection, version
/// bookkeeping, migration lock, which errors are transient).
/// Many writers may finalize at once: every write is one transaction, an idempotent upsert retried while the back end
/// reports contention; migrations run inside the same retry (a busy database during the first open is contention too).
/// </summary>
public sealed class AccountingDb : IDisposable
{
    public static int SchemaVersion => Schema.Version;

    private readonly DbConnection _con;
    private readonly AccountingBackend _backend;

    /// <summary>Where the database is, for messages (a file path, or the URL without credentials).</summary>
    public string Path { get; }

    private AccountingDb(string path, DbConnection con, AccountingBackend backend)
    {
        Path = path;
        _con = con;
        _backend = backend;
    }

    /// <summary>Default total time one open or one write keeps retrying under contention.</summary>
    public const int DefaultWaitMs = 30_000;

    /// <summary>Opens the SQLite database at <paramref name="path"/> for writing: creates it when missing, migrates.</summary>
    /// <param name="busyTimeoutMs">How long one statement waits for a lock before the retry loop takes over.</param>
    /// <param name="waitMs">How long the open (migration included) keeps retrying under contention in all.</param>
    public static AccountingDb Open(string path, int busyTimeoutMs = 10_000, int waitMs = DefaultWaitMs) => Open(new SqliteBackend(path), busyTimeoutMs, waitMs);

    /// <summary>Opens for writing, migrating inside the retry loop (a database busy at the first open is contention
    /// like any other, not a failure).</summary>
    public static AccountingDb Open(AccountingBackend backend, int busyTimeoutMs = 10_000, int waitMs = DefaultWaitMs)
    {
        var db = new AccountingDb(backend.Where, backend.Connect(busyTimeoutMs, readOnly: false), backend);
        try
        {
            db.Retry(() =>
            {
                db.Migrate();
                backend.AfterMigrate(db._con); // idempotent; on SQLite it reads the file, so it may meet a lock too
            }, waitMs);
        }
        catch
        {
            db.Dispose();
            throw;
        }
        return db;
    }

    /// <summary>Opens an existing SQLite database for reading only (reports): never creates or migrates it.</summary>
    /// <exception cref="FileNotFoundException">No database at <paramref name="path"/>.</exception>
    public static AccountingDb OpenReadOnly(string path, int busyTimeoutMs = 10_000) => OpenReadOnly(new SqliteBackend(path), busyTimeoutMs);

    public static AccountingDb OpenReadOnly(AccountingBackend backend, int busyTimeoutMs = 10_000)
    {
        var db = new AccountingDb(backend.Where, backend.Connect(busyTimeoutMs, readOnly: true), backend);
        try
        {
            int v = backend.ReadVersion(db._con, null);
            if (v > SchemaVersion) throw new InvalidDataException($"{db.Path}: schema version {v} is newer than this tool ({SchemaVersion}); update alumet-hpc");
            if (v == 0) throw new InvalidDataException($"{db.Path}: not an alumet-hpc accounting database (schema version 0)");
            if (v < SchemaVersion) throw new InvalidDataException($"{db.Path}: schema version {v} is older than this tool ({SchemaVersion}); the next job end or 'alumet-hpc db flush' (root) migrates it");
        }
        catch
        {
            db.Dispose();
            throw;
        }
        return db;
    }

    public int UserVersion() => _backend.ReadVersion(_con, null);

    private void Migrate()
    {
        int current = _backend.ReadVersion(_con, null); // the usual case needs no write lock
        if (current > SchemaVersion) throw new InvalidDataException($"{Path}: schema version {current} is newer than this tool ({SchemaVersion}); update alumet-hpc");
        if (current == SchemaVersion) return;
        using var tx = _con.BeginTransaction();
        _backend.LockSchema(_con, tx); // concurrent first-openers serialize here; re-read the version under the lock
        int v = _backend.ReadVersion(_con, tx);
        if (v > SchemaVersion) throw new InvalidDataException($"{Path}: schema version {v} is newer than this tool ({SchemaVersion}); update alumet-hpc");
        if (v == SchemaVersion)
        {
            tx.Commit();
            return;
        }
        for (; v < SchemaVersion; v++)
        {
            string? sql = _backend.MigrationSql(Schema.Migrations[v]);
            if (!string.IsNullOrEmpty(sql))
                using (var cmd = Command(tx, sql))
                    cmd.ExecuteNonQuery();
        }
        _backend.WriteVersion(_con, tx, SchemaVersion);
        tx.Commit();
    }

    private const string RankSql = "CASE {0}.status WHEN 'complete' THEN 3 WHEN 'partial' THEN 2 WHEN 'not_measured' THEN 1 ELSE 0 END";

    private static readonly string UpsertSql = $"""
        INSERT INTO jobs (cluster, scheduler, job_id, node, run_id, "user", uid, start_time, end_time, elapsed_s,
            energy_package_j, energy_core_j, energy_uncore_j, energy_dram_j, energy_psys_j, energy_gpu_j, total_energy_j,
            ave_power_w, max_power_w, frequency_hz, frequency, interfaces, estimated, estimate_model, perimeter,
            attribution_mode, storage_period_ms, sample_count, wrap_ambiguous, read_errors,
            node_energy_j, unattributed_energy_j, other_jobs_energy_j, status, reason, parquet_path, tool_version, updated_at,
            wall_energy_j, wall_model_energy_j, wall_model_uncertainty_j, wall_model,
            energy_u_interfaces_j, energy_u_attribution_j, energy_u_random_j, energy_missed_max_j, energy_u_k, total_energy_u_j,
            facility_energy_j, facility_energy_u_j, co2e_g, co2e_u_g, carbon_basis, carbon_note, job_name, cgroup_gone)
        VALUES (@c, @s, @j, @n, @r, @user, @uid, @start, @end, @elapsed,
            @pkg, @core, @uncore, @dram, @psys, @gpu, @total,
            @ave, @max, @hz, @freq, @ifaces, @est, @model, @perimeter,
            @attr, @period, @samples, @wrap, @rerr,
            @nodej, @unattr, @other, @status, @reason, @parquet, @version, @updated,
            @wallj, @wallmj, @wallmu, @wallm,
            @ui, @ua, @ur, @um, @uk, @utotal,
            @fac, @facu, @co2, @co2u, @cbasis, @cnote, @name, @gone)
        ON CONFLICT (cluster, scheduler, job_id, node, run_id) DO UPDATE SET
            "user"=excluded."user", uid=excluded.uid, start_time=excluded.start_time, end_time=excluded.end_time,
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
            wall_energy_j=excluded.wall_energy_j, wall_model_energy_j=excluded.wall_model_energy_j,
            wall_model_uncertainty_j=excluded.wall_model_uncertainty_j, wall_model=excluded.wall_model,
            energy_u_interfaces_j=excluded.energy_u_interfaces_j, energy_u_attribution_j=excluded.energy_u_attribution_j,
            energy_u_random_j=excluded.energy_u_random_j, energy_missed_max_j=excluded.energy_missed_max_j,
            energy_u_k=excluded.energy_u_k, total_energy_u_j=excluded.total_energy_u_j,
            facility_energy_j=excluded.facility_energy_j, facility_energy_u_j=excluded.facility_energy_u_j,
            co2e_g=excluded.co2e_g, co2e_u_g=excluded.co2e_u_g, carbon_basis=excluded.carbon_basis, carbon_note=excluded.carbon_note,
            job_name=excluded.job_name, cgroup_gone=excluded.cgroup_gone
        WHERE {string.Format(CultureInfo.InvariantCulture, RankSql, "excluded")} >= {string.Format(CultureInfo.InvariantCulture, RankSql, "jobs")}
        RETURNING 1;
        """;

    /// <summary>
    /// Inserts or updates the row of (cluster, scheduler, job id, node, run id) and replaces its steps, atomically.
    /// Idempotent: the same record twice leaves one identical row. Precedence: a record replaces the stored one
    /// only when its status is at least as good (complete &gt; partial &gt; not_measured), so a late or repeated
    /// "not_measured" (e.g. a retried epilog that found no spool) never erases measured energy. The precedence test
    /// is part of the upsert statement itself, so concurrent writers of one key cannot both pass it.
    /// </summary>
    /// <returns>True when the record was written, false when a better status was already stored.</returns>
    /// <param name="waitMs">How long the write keeps retrying under contention in all.</param>
    public bool Upsert(JobRecord r, int waitMs = DefaultWaitMs)
    {
        if (!JobStatus.IsValid(r.Status)) throw new ArgumentException($"invalid status '{r.Status}'", nameof(r));
        bool written = false;
        Retry(() =>
        {
            written = false;
            using var tx = _con.BeginTransaction();
            using (var up = Command(tx, UpsertSql))
            {
                Key(up, r);
                Add(up, "user", r.User);
                Add(up, "uid", (long)r.Uid);
                Measured(up, r.Start, r.End, r.ElapsedS, r.Energy, r.AvePowerW, r.MaxPowerW);
                Add(up, "hz", r.FrequencyHz);
                Add(up, "freq", r.Frequency);
                Add(up, "ifaces", r.Interfaces);
                Add(up, "est", r.Estimated ? 1L : 0L);
                Add(up, "model", r.EstimateModel);
                Add(up, "perimeter", r.Perimeter);
                Add(up, "attr", r.AttributionMode);
                Add(up, "period", (long)r.StoragePeriodMs);
                Add(up, "samples", r.SampleCount);
                Add(up, "wrap", r.WrapAmbiguous);
                Add(up, "rerr", r.ReadErrors);
                Add(up, "nodej", r.NodeEnergyJ);
                Add(up, "unattr", r.UnattributedEnergyJ);
                Add(up, "other", r.OtherJobsEnergyJ);
                Add(up, "status", r.Status);
                Add(up, "reason", r.Reason);
                Add(up, "parquet", r.ParquetPath);
                Add(up, "version", r.ToolVersion);
                Add(up, "updated", JobRecord.FormatTime(DateTime.UtcNow));
                Add(up, "wallj", r.WallEnergyJ);
                Add(up, "wallmj", r.WallModelEnergyJ);
                Add(up, "wallmu", r.WallModelUncertaintyJ);
                Add(up, "wallm", r.WallModel);
                Uncertainty(up, r.Uncertainty);
                Add(up, "fac", (object?)r.Carbon.FacilityEnergyJ ?? DBNull.Value);
                Add(up, "facu", (object?)r.Carbon.FacilityEnergyUJ ?? DBNull.Value);
                Add(up, "co2", (object?)r.Carbon.Co2eG ?? DBNull.Value);
                Add(up, "co2u", (object?)r.Carbon.Co2eUG ?? DBNull.Value);
                Add(up, "cbasis", r.Carbon.Basis);
                Add(up, "cnote", r.Carbon.Note);
                Add(up, "name", r.JobName);
                Add(up, "gone", r.CgroupGonePeriods);
                if (up.ExecuteScalar() is null or DBNull)
                {
                    tx.Rollback(); // a better status is stored
                    return;
                }
            }
            using (var del = Command(tx, "DELETE FROM steps WHERE cluster=@c AND scheduler=@s AND job_id=@j AND node=@n AND run_id=@r;"))
            {
                Key(del, r);
                del.ExecuteNonQuery();
            }
            foreach (var st in r.Steps)
            {
                using var ins = Command(tx, """
                    INSERT INTO steps (cluster, scheduler, job_id, node, run_id, step_id, start_time, end_time, elapsed_s,
                        energy_package_j, energy_core_j, energy_uncore_j, energy_dram_j, energy_psys_j, energy_gpu_j, total_energy_j,
                        ave_power_w, max_power_w, sample_count, wrap_ambiguous,
                        energy_u_interfaces_j, energy_u_attribution_j, energy_u_random_j, energy_missed_max_j, energy_u_k, total_energy_u_j,
                        cgroup_gone)
                    VALUES (@c, @s, @j, @n, @r, @step, @start, @end, @elapsed, @pkg, @core, @uncore, @dram, @psys, @gpu, @total,
                        @ave, @max, @samples, @wrap, @ui, @ua, @ur, @um, @uk, @utotal, @gone);
                    """);
                Key(ins, r);
                Add(ins, "step", st.StepId);
                Measured(ins, st.Start, st.End, st.ElapsedS, st.Energy, st.AvePowerW, st.MaxPowerW);
                Add(ins, "samples", st.SampleCount);
                Add(ins, "wrap", st.WrapAmbiguous);
                Add(ins, "gone", st.CgroupGonePeriods);
                Uncertainty(ins, st.Uncertainty);
                ins.ExecuteNonQuery();
            }
            tx.Commit();
            written = true;
        }, waitMs);
        return written;
    }

    /// <summary>Every node row of a job's latest run (optionally restricted to one cluster/scheduler), with steps.</summary>
    public IReadOnlyList<JobRecord> GetJob(string jobId, string? cluster = null, string? scheduler = null, RunSelection runs = RunSelection.Latest) =>
        Query(new JobQuery([jobId], Cluster: cluster, Scheduler: scheduler, Runs: runs));

    public IReadOnlyList<JobRecord> GetByUser(string user, string? cluster = null) => Query(new JobQuery(User: user, Cluster: cluster));

    /// <summary>A row is in its job's latest run unless the same node has a later run of the job, or another run of the
    /// job started after this row ended (the job id was reused). Run ids of one run may differ between nodes (start
    /// times without a SLUID): the test is on times, per node, not on equal run ids.
    /// With a time window (-S/-E) only the runs in the window count, as in sacct (its duplicate check sees the rows its
    /// window selected): a listing of October lost every October run of an id that a November run reused.
    /// A row with no time (<see cref="Timeless"/>) is placed at its last update, as the window places it: its run had
    /// ended by then, so a run started later hides it, and on its node it is later than a run started before; it hides
    /// no other node's row (when its run started is unknown). It used to lose to any earlier run on its node (an empty
    /// start sorts first) and to stay beside every later run on the other nodes.</summary>
    private static string LatestRunSql(bool sameUser, bool inWindow) => $"""
         AND NOT EXISTS (SELECT 1 FROM jobs l WHERE l.cluster = jobs.cluster AND l.scheduler = jobs.scheduler AND l.job_id = jobs.job_id{(sameUser ? SameUser("l") : "")}{(inWindow ? InWindow("l") : "")}
            AND (({EndedBy("jobs")} <> '' AND l.start_time > {EndedBy("jobs")})
              OR (l.node = jobs.node AND ({Started("l")} > {Started("jobs")} OR ({Started("l")} = {Started("jobs")} AND l.run_id > jobs.run_id)))))
        """;

    /// <summary>
    /// A row with neither start nor end: a not_measured row (the prolog never registered the job on that node, no
    /// source...), of which only the run id is known. sacct never merges two job records by time: such a row is of the
    /// run its run id names, and of no other (<see cref="SameRun"/>).
    /// </summary>
    private static string Timeless(string alias) => $"({alias}.start_time = '' AND {alias}.end_time = '')";

    /// <summary>When the row's run had ended: its end, or for a row with no time its last update (the window's rule).</summary>
    private static string EndedBy(string alias) => $"(CASE WHEN {Timeless(alias)} THEN {alias}.updated_at ELSE {alias}.end_time END)";

    /// <summary>The row's start, or for a row with no time its last update: the order of one node's runs.</summary>
    private static string Started(string alias) => $"(CASE WHEN {Timeless(alias)} THEN {alias}.updated_at ELSE {alias}.start_time END)";

    /// <summary>
    /// The row <paramref name="alias"/> is of the same run as <c>jobs</c>: the same run id (a SLUID names a run on every
    /// node), or neither started after the other ended (without a SLUID each node names the run by its own start, a few
    /// ms apart, and two runs of one job id never overlap: the rule of <see cref="LatestRunSql"/>). -N used to match a
    /// row through another run of the id, so an admin's -N n1 --runs showed a run that never ran on n1. A row with no
    /// time is of its run id's run only: with no time it overlapped every run, so -N on its node matched them all.
    /// </summary>
    private static string SameRun(string alias) => $"""
         AND ({alias}.run_id = jobs.run_id OR (NOT {Timeless(alias)} AND NOT {Timeless("jobs")}
            AND NOT ((jobs.end_time <> '' AND {alias}.start_time > jobs.end_time)
            OR ({alias}.end_time <> '' AND jobs.start_time > {alias}.end_time))))
        """;

    /// <summary>The row <paramref name="alias"/> is in the window @since..@until: <see cref="Schema.WindowEnd"/> and <see cref="Schema.WindowStart"/> of that row.</summary>
    private static string InWindow(string alias) =>
        $" AND (CASE WHEN {alias}.end_time = '' THEN {alias}.updated_at ELSE {alias}.end_time END) >= @since"
        + $" AND (CASE WHEN {alias}.end_time = '' THEN {alias}.updated_at ELSE {alias}.start_time END) <= @until";

    /// <summary>
    /// With a user filter (a user's own jobs, README "Who sees what", or an admin's -u), the rows a row is compared with — a later run that
    /// hides it, a node that -N matches — must be that user's too: another user's run of a reused job id would otherwise
    /// hide the caller's own run and tell, through -N, on which nodes that other run was.
    /// </summary>
    private static string SameUser(string alias) => $" AND {alias}.uid = jobs.uid";

    /// <summary>
    /// A query of some users' jobs (the caller's own, or an admin's -u): their latest runs are among their own runs. An
    /// admin's "-u alice" used to lose alice's run of an id that another user's later run reused (a Slurm state reset).
    /// </summary>
    private static bool ByUser(JobQuery q) => q.Uid is not null || q.Users is { Count: > 0 } || !string.IsNullOrEmpty(q.User);

    /// <summary>Rows matching every given filter in a list (tests, small queries); reports use <see cref="Stream"/>.</summary>
    public IReadOnlyList<JobRecord> Query(JobQuery q) => Stream(q).ToList();

    /// <summary>
    /// Rows matching every given filter, one at a time, ordered by cluster, scheduler, job id (numeric first), start, node,
    /// so that the rows of one job are adjacent. No cap: memory stays constant however many rows match (the back end
    /// sorts; SQLite's sorter spills to temporary files). The time window uses the end_time indexes (migration 3); a row
    /// with no end time (nothing measured, no time known) falls in the window of its last update.
    /// </summary>
    public IEnumerable<JobRecord> Stream(JobQuery q)
    {
        using var cmd = StreamCommand(q);

        // PostgreSQL runs one command at a time per connection: the steps of each row come through a second one.
        using var stepsCon = q.WithSteps && _backend is PostgresBackend ? _backend.Connect(10_000, readOnly: true) : null;
        using var steps = q.WithSteps ? StepsCommand(stepsCon ?? _con) : null;
        using var rd = cmd.ExecuteReader();
        var o = new Ordinals(rd);
        StepOrdinals? so = null; // the steps statement's columns, looked up at its first row
        while (rd.Read())
        {
            var r = new JobRecord(
                o.Str(rd, o.Cluster), o.Str(rd, o.Scheduler), o.Str(rd, o.JobId), o.Str(rd, o.Node), o.Str(rd, o.User), (int)o.Lng(rd, o.Uid),
                JobRecord.ParseTime(o.Str(rd, o.Start)), JobRecord.ParseTime(o.Str(rd, o.End)), o.Dbl(rd, o.Elapsed),
                o.Energies(rd) with { WallJ = o.Dbl(rd, o.WallJ) }, o.Dbl(rd, o.Ave), o.Dbl(rd, o.Max),
                o.Dbl(rd, o.Hz), o.Str(rd, o.Freq), o.Str(rd, o.Ifaces), o.Lng(rd, o.Est) != 0, o.Str(rd, o.Model),
                o.Str(rd, o.Perimeter), o.Str(rd, o.Attr), (int)o.Lng(rd, o.Period),
                o.Lng(rd, o.Samples), o.Lng(rd, o.Wrap), o.Lng(rd, o.ReadErr),
                o.Dbl(rd, o.NodeJ), o.Dbl(rd, o.Unattr), o.Dbl(rd, o.Other),
                o.Str(rd, o.Status), o.Str(rd, o.Reason), o.Str(rd, o.Parquet), o.Str(rd, o.Version), [])
            {
                RunId = o.Str(rd, o.RunId),
                JobName = o.Str(rd, o.JobName),
                CgroupGonePeriods = o.Lng(rd, o.Gone),
                WallModelEnergyJ = o.Dbl(rd, o.WallModelJ), WallModelUncertaintyJ = o.Dbl(rd, o.WallModelU), WallModel = o.Str(rd, o.WallModel),
                Uncertainty = o.Quality.Read(rd),
                Carbon = new FacilityCarbon(o.NDbl(rd, o.Facility), o.NDbl(rd, o.FacilityU), o.NDbl(rd, o.Co2), o.NDbl(rd, o.Co2U),
                    o.Str(rd, o.CarbonBasis), o.Str(rd, o.CarbonNote)),
            };
            yield return steps is null ? r : r with { Steps = ReadSteps(steps, r, ref so) };
        }
    }

    /// <summary>The statement of <see cref="Stream"/> (tests read its plan).</summary>
    internal DbCommand StreamCommand(JobQuery q)
    {
        var sql = new StringBuilder("SELECT * FROM jobs WHERE 1=1");
        var cmd = _con.CreateCommand();
        In(sql, cmd, "job_id", "j", q.JobIds);
        UserIn(sql, cmd, [.. q.Users ?? [], .. string.IsNullOrEmpty(q.User) ? Array.Empty<string>() : [q.User]]);
        if (q.Uid is { } uid) { sql.Append(" AND uid = @uid"); Add(cmd, "uid", (long)uid); }
        In(sql, cmd, "cluster", "c", [.. q.Clusters ?? [], .. string.IsNullOrEmpty(q.Cluster) ? Array.Empty<string>() : [q.Cluster]]);
        if (!string.IsNullOrEmpty(q.Scheduler)) { sql.Append(" AND scheduler = @sched"); Add(cmd, "sched", q.Scheduler); }
        if (!string.IsNullOrEmpty(q.RunId)) { sql.Append(" AND run_id = @run"); Add(cmd, "run", q.RunId); }
        In(sql, cmd, "job_name", "name", q.Names);
        if (q.Since is not null || q.Until is not null)
        {
            // One indexed expression (migration 6), not an OR of two columns: SQLite answers such an OR by collecting every
            // matching rowid in memory before the first row (48 MB for 1 M rows).
            // The backend marks the window as selective: without it SQLite preferred scanning the primary key (which gives
            // the first ORDER BY columns) over the window's index when nothing else narrowed the rows (-a --runs: every
            // row read for a day's listing).
            sql.Append(" AND ").Append(_backend.Selective($"({Schema.WindowEnd}) >= @since"))
               .Append(" AND (").Append(Schema.WindowStart).Append(") <= @until");
            Add(cmd, "since", JobRecord.FormatTime(q.Since ?? DateTime.UnixEpoch));
            Add(cmd, "until", JobRecord.FormatTime(q.Until ?? new DateTime(9999, 1, 1, 0, 0, 0, DateTimeKind.Utc)));
        }
        if (q.Nodes is { Count: > 0 })
        {
            sql.Append(" AND EXISTS (SELECT 1 FROM jobs o WHERE o.cluster = jobs.cluster AND o.scheduler = jobs.scheduler AND o.job_id = jobs.job_id");
            if (ByUser(q)) sql.Append(SameUser("o"));
            sql.Append(SameRun("o"));
            In(sql, cmd, "o.node", "n", q.Nodes);
            sql.Append(')');
        }
        if (q.Runs == RunSelection.Latest) sql.Append(LatestRunSql(sameUser: ByUser(q), inWindow: q.Since is not null || q.Until is not null));
        sql.Append(" ORDER BY cluster, scheduler, length(job_id), job_id, start_time, node, run_id");
        if (q.Limit is { } limit) { sql.Append(" LIMIT @limit"); Add(cmd, "limit", (long)limit); }
        cmd.CommandText = sql.Append(';').ToString();
        return cmd;
    }

    /// <summary>
    /// Users as sacct's <c>-u/--uid/--user</c> takes them: names or uids. A value of digits matches either column (a
    /// user name may be all digits), any other value the name.
    /// </summary>
    private static void UserIn(StringBuilder sql, DbCommand cmd, IReadOnlyList<string> users)
    {
        if (users.Count == 0) return;
        var uids = users.Where(u => u.Length is > 0 and <= 10 && u.All(char.IsAsciiDigit) && long.Parse(u, CultureInfo.InvariantCulture) <= uint.MaxValue)
            .Select(u => long.Parse(u, CultureInfo.InvariantCulture)).Distinct().ToList();
        if (uids.Count == 0)
        {
            In(sql, cmd, "\"user\"", "u", users);
            return;
        }
        var byName = new StringBuilder();
        In(byName, cmd, "\"user\"", "u", users);
        sql.Append(" AND (").Append(byName.ToString(" AND ".Length, byName.Length - " AND ".Length)).Append(" OR uid IN (");
        for (int i = 0; i < uids.Count; i++)
        {
            sql.Append(i == 0 ? "@un" : ",@un").Append(i);
            Add(cmd, "un" + i, uids[i]);
        }
        sql.Append("))");
    }

    private static void In(StringBuilder sql, DbCommand cmd, string column, string prefix, IReadOnlyList<string>? values)
    {
        if (values is not { Count: > 0 }) return;
        sql.Append(" AND ").Append(column).Append(" IN (");
        for (int i = 0; i < values.Count; i++)
        {
            sql.Append(i == 0 ? "@" : ",@").Append(prefix).Append(i);
            Add(cmd, prefix + i, values[i]);
        }
        sql.Append(')');
    }

    /// <summary>One statement re-run for each row (a primary-key lookup), not one new command per row.</summary>
    private DbCommand StepsCommand(DbConnection con)
    {
        var cmd = con.CreateCommand();
        cmd.CommandText = "SELECT * FROM steps WHERE cluster=@c AND scheduler=@s AND job_id=@j AND node=@n AND run_id=@r;";
        foreach (var name in new[] { "c", "s", "j", "n", "r" }) Add(cmd, name, "");
        cmd.Prepare();
        return cmd;
    }

    private static List<StepRecord> ReadSteps(DbCommand cmd, JobRecord r, ref StepOrdinals? o)
    {
        cmd.Parameters["c"].Value = r.Cluster;
        cmd.Parameters["s"].Value = r.Scheduler;
        cmd.Parameters["j"].Value = r.JobId;
        cmd.Parameters["n"].Value = r.Node;
        cmd.Parameters["r"].Value = r.RunId;
        var steps = new List<StepRecord>();
        using var rd = cmd.ExecuteReader();
        while (rd.Read())
        {
            o ??= new StepOrdinals(rd);
            steps.Add(new StepRecord(rd.GetString(o.StepId), JobRecord.ParseTime(rd.GetString(o.Start)), JobRecord.ParseTime(rd.GetString(o.End)),
                rd.GetDouble(o.Elapsed), o.Energy.Read(rd), rd.GetDouble(o.Ave), rd.GetDouble(o.Max), rd.GetInt64(o.Samples), rd.GetInt64(o.Wrap))
            {
                Uncertainty = o.Quality.Read(rd),
                CgroupGonePeriods = rd.GetInt64(o.Gone),
            });
        }
        steps.Sort((a, b) => StepOrder.Compare(a.StepId, b.StepId));
        return steps;
    }

    /// <summary>
    /// Column positions of the jobs table, looked up once per query rather than once per value (name lookups per value
    /// were 8 % of a listing's time). Every column is NOT NULL (<see cref="Schema"/>) except the four carbon figures, so
    /// only those pay a NULL test.
    /// </summary>
    private sealed class Ordinals(DbDataReader rd)
    {
        public readonly int Cluster = rd.GetOrdinal("cluster"), Scheduler = rd.GetOrdinal("scheduler"), JobId = rd.GetOrdinal("job_id"),
            Node = rd.GetOrdinal("node"), User = rd.GetOrdinal("user"), Uid = rd.GetOrdinal("uid"), Start = rd.GetOrdinal("start_time"),
            End = rd.GetOrdinal("end_time"), Elapsed = rd.GetOrdinal("elapsed_s"), Ave = rd.GetOrdinal("ave_power_w"), Max = rd.GetOrdinal("max_power_w"),
            Hz = rd.GetOrdinal("frequency_hz"), Freq = rd.GetOrdinal("frequency"), Ifaces = rd.GetOrdinal("interfaces"), Est = rd.GetOrdinal("estimated"),
            Model = rd.GetOrdinal("estimate_model"), Perimeter = rd.GetOrdinal("perimeter"), Attr = rd.GetOrdinal("attribution_mode"),
            Period = rd.GetOrdinal("storage_period_ms"), Samples = rd.GetOrdinal("sample_count"), Wrap = rd.GetOrdinal("wrap_ambiguous"),
            ReadErr = rd.GetOrdinal("read_errors"), NodeJ = rd.GetOrdinal("node_energy_j"), Unattr = rd.GetOrdinal("unattributed_energy_j"),
            Other = rd.GetOrdinal("other_jobs_energy_j"), Status = rd.GetOrdinal("status"), Reason = rd.GetOrdinal("reason"),
            Parquet = rd.GetOrdinal("parquet_path"), Version = rd.GetOrdinal("tool_version"), RunId = rd.GetOrdinal("run_id"),
            WallJ = rd.GetOrdinal("wall_energy_j"), WallModelJ = rd.GetOrdinal("wall_model_energy_j"),
            WallModelU = rd.GetOrdinal("wall_model_uncertainty_j"), WallModel = rd.GetOrdinal("wall_model"), JobName = rd.GetOrdinal("job_name"),
            Gone = rd.GetOrdinal("cgroup_gone"),
            Facility = rd.GetOrdinal("facility_energy_j"), FacilityU = rd.GetOrdinal("facility_energy_u_j"), Co2 = rd.GetOrdinal("co2e_g"),
            Co2U = rd.GetOrdinal("co2e_u_g"), CarbonBasis = rd.GetOrdinal("carbon_basis"), CarbonNote = rd.GetOrdinal("carbon_note");

        public readonly EnergyOrdinals Energy = new(rd);
        public readonly QualityOrdinals Quality = new(rd);

        public string Str(DbDataReader r, int i) => r.GetString(i);
        public double Dbl(DbDataReader r, int i) => r.GetDouble(i);
        public long Lng(DbDataReader r, int i) => r.GetInt64(i);
        public double? NDbl(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetDouble(i); // NULL: not configured or not computable
        public DomainEnergies Energies(DbDataReader r) => Energy.Read(r);
    }

    /// <summary>Column positions of the steps table (<see cref="Ordinals"/>).</summary>
    private sealed class StepOrdinals(DbDataReader rd)
    {
        public readonly int StepId = rd.GetOrdinal("step_id"), Start = rd.GetOrdinal("start_time"), End = rd.GetOrdinal("end_time"),
            Elapsed = rd.GetOrdinal("elapsed_s"), Ave = rd.GetOrdinal("ave_power_w"), Max = rd.GetOrdinal("max_power_w"),
            Samples = rd.GetOrdinal("sample_count"), Wrap = rd.GetOrdinal("wrap_ambiguous"), Gone = rd.GetOrdinal("cgroup_gone");

        public readonly EnergyOrdinals Energy = new(rd);
        public readonly QualityOrdinals Quality = new(rd);
    }

    /// <summary>The domain energies, in jobs and in steps.</summary>
    private sealed class EnergyOrdinals(DbDataReader rd)
    {
        private readonly int _pkg = rd.GetOrdinal("energy_package_j"), _core = rd.GetOrdinal("energy_core_j"), _uncore = rd.GetOrdinal("energy_uncore_j"),
            _dram = rd.GetOrdinal("energy_dram_j"), _psys = rd.GetOrdinal("energy_psys_j"), _gpu = rd.GetOrdinal("energy_gpu_j");

        public DomainEnergies Read(DbDataReader r) =>
            new(r.GetDouble(_pkg), r.GetDouble(_core), r.GetDouble(_uncore), r.GetDouble(_dram), r.GetDouble(_psys), r.GetDouble(_gpu));
    }

    /// <summary>The uncertainty components (docs/uncertainty.md), in jobs and in steps.</summary>
    private sealed class QualityOrdinals(DbDataReader rd)
    {
        private readonly int _ui = rd.GetOrdinal("energy_u_interfaces_j"), _ua = rd.GetOrdinal("energy_u_attribution_j"),
            _ur = rd.GetOrdinal("energy_u_random_j"), _um = rd.GetOrdinal("energy_missed_max_j"), _uk = rd.GetOrdinal("energy_u_k");

        public EnergyUncertainty Read(DbDataReader r) => new(r.GetDouble(_ui), r.GetDouble(_ua), r.GetDouble(_ur), r.GetDouble(_um), r.GetDouble(_uk));
    }

    /// <summary>Components by kind, so that nodes combine correctly from rows (docs/uncertainty.md), and U for SQL readers.</summary>
    private static void Uncertainty(DbCommand cmd, EnergyUncertainty u)
    {
        Add(cmd, "ui", u.InterfacesJ);
        Add(cmd, "ua", u.AttributionJ);
        Add(cmd, "ur", u.RandomJ);
        Add(cmd, "um", u.MissedJ);
        Add(cmd, "uk", u.CoverageFactor);
        Add(cmd, "utotal", u.ExpandedJ);
    }

    private DbCommand Command(DbTransaction tx, string sql)
    {
        var cmd = _con.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd;
    }

    private static void Add(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        cmd.Parameters.Add(p);
    }

    private static void Key(DbCommand cmd, JobRecord r)
    {
        Add(cmd, "c", r.Cluster);
        Add(cmd, "s", r.Scheduler);
        Add(cmd, "j", r.JobId);
        Add(cmd, "n", r.Node);
        Add(cmd, "r", r.RunId);
    }

    /// <summary>The parameters of <see cref="Schema"/>'s measured columns, common to jobs and steps.</summary>
    private static void Measured(DbCommand cmd, DateTime? start, DateTime? end, double elapsedS, DomainEnergies e, double aveW, double maxW)
    {
        Add(cmd, "start", JobRecord.FormatTime(start));
        Add(cmd, "end", JobRecord.FormatTime(end));
        Add(cmd, "elapsed", elapsedS);
        Add(cmd, "pkg", e.PackageJ);
        Add(cmd, "core", e.CoreJ);
        Add(cmd, "uncore", e.UncoreJ);
        Add(cmd, "dram", e.DramJ);
        Add(cmd, "psys", e.PsysJ);
        Add(cmd, "gpu", e.GpuJ);
        Add(cmd, "total", e.TotalJ);
        Add(cmd, "ave", aveW);
        Add(cmd, "max", maxW);
    }

    /// <summary>Runs a transaction again while the back end reports contention (SQLite BUSY/LOCKED, PostgreSQL
    /// serialization failures), with jittered backoff, for at most about <paramref name="budgetMs"/> beyond the
    /// driver's own wait. Anything else (server down, disk full, bad schema) goes straight to the caller.</summary>
    private void Retry(Action action, int budgetMs)
    {
        long deadline = Environment.TickCount64 + Math.Max(budgetMs, 0);
        for (int i = 1; ; i++)
        {
            try
            {
                action();
                return;
            }
            catch (DbException e) when (_backend.IsContention(e) && Environment.TickCount64 < deadline)
            {
                int ms = Random.Shared.Next(5, 20 + 10 * Math.Min(i, 20));
                Thread.Sleep((int)Math.Max(1, Math.Min(ms, deadline - Environment.TickCount64)));
            }
        }
    }

    public void Dispose() => _con.Dispose();
}
