namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>
/// One schema step: the same change for every back end. <see cref="Sql"/> is the SQLite text (released SQLite
/// migrations are never edited); <see cref="Postgres"/> the PostgreSQL text where the dialects differ (types,
/// ALTER TABLE), null where the SQLite text runs unchanged on PostgreSQL too, "" where PostgreSQL has nothing to do.
/// </summary>
internal sealed record Migration(string Sql, string? Postgres = null);

/// <summary>The accounting schema: migration i brings version i to i+1. Append only; never edit a released entry.</summary>
internal static class Schema
{
    public static readonly Migration[] Migrations =
    [
        // v1: one row per (cluster, scheduler, job_id, node)
        new("""
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
        """, Postgres: "" /* nothing: PostgreSQL support starts at v2, see PostgresV2 */),

        // v2: run_id in the key (a reused job id never overwrites an earlier run). SQLite cannot change a primary
        // key in place: the tables are rebuilt (foreign keys are off while migrating). Existing rows get the run id
        // their start time names (yyyyMMddTHHmmssfffZ), '' when they have none.
        new($$"""
        CREATE TABLE jobs_v2 ({{JobsColumns("REAL", "INTEGER")}},
            run_id TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (cluster, scheduler, job_id, node, run_id)
        );
        INSERT INTO jobs_v2 SELECT *, {{RunIdOfStart}} FROM jobs;
        DROP TABLE jobs;
        ALTER TABLE jobs_v2 RENAME TO jobs;
        CREATE TABLE steps_v2 ({{StepsColumns("REAL", "INTEGER")}},
            run_id TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (cluster, scheduler, job_id, node, run_id, step_id),
            FOREIGN KEY (cluster, scheduler, job_id, node, run_id) REFERENCES jobs(cluster, scheduler, job_id, node, run_id) ON DELETE CASCADE
        );
        INSERT INTO steps_v2 SELECT s.*, j.run_id FROM steps s
            JOIN jobs j ON j.cluster = s.cluster AND j.scheduler = s.scheduler AND j.job_id = s.job_id AND j.node = s.node;
        DROP TABLE steps;
        ALTER TABLE steps_v2 RENAME TO steps;
        {{Indexes}}
        """, Postgres: PostgresV2),

        // v3: the report's time window (sacct -S/-E and its default "since 00:00 today"), for everyone and for one uid.
        new("""
        CREATE INDEX jobs_by_end ON jobs(end_time);
        CREATE INDEX jobs_by_uid_end ON jobs(uid, end_time);
        """),

        // v4: wall side. The job's share of the BMC's node wall energy (measured), and the calibration model's
        // wall-side energy with its standard uncertainty and the model's one-line description.
        new("""
        ALTER TABLE jobs ADD COLUMN wall_energy_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN wall_model_energy_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN wall_model_uncertainty_j REAL NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN wall_model TEXT NOT NULL DEFAULT '';
        """, Postgres: """
        ALTER TABLE jobs ADD COLUMN wall_energy_j DOUBLE PRECISION NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN wall_model_energy_j DOUBLE PRECISION NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN wall_model_uncertainty_j DOUBLE PRECISION NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN wall_model TEXT NOT NULL DEFAULT '';
        """),

        // v5: the uncertainty of every total (docs/uncertainty.md), facility energy and CO2e (docs/carbon.md).
        // energy_u_k = 0 marks rows written before: their uncertainty is unknown, not zero. Components are kept by
        // kind so that nodes combine correctly (systematic linearly, random in quadrature).
        new(QualityColumns("REAL"), Postgres: QualityColumns("DOUBLE PRECISION")),

        // v6: the job's name as the scheduler gave it (sacct --name; '' when the scheduler did not say), and the report's
        // time window on one indexed expression (WindowEnd) instead of v3's "end_time OR updated_at": SQLite answered
        // that OR by collecting every matching rowid in memory first (48 MB for a listing of 1 M rows, make bench).
        new($"""
        ALTER TABLE jobs ADD COLUMN job_name TEXT NOT NULL DEFAULT '';
        CREATE INDEX jobs_by_name ON jobs(job_name);
        DROP INDEX IF EXISTS jobs_by_end;
        DROP INDEX IF EXISTS jobs_by_uid_end;
        CREATE INDEX jobs_by_window_end ON jobs(({WindowEnd}));
        CREATE INDEX jobs_by_uid_window_end ON jobs(uid, ({WindowEnd}));
        """),

        // v7: the periods whose split found the job's cgroup gone and could not attribute its CPU time since the read
        // before (README "Attribution", flags=8): the job's energy is then a lower bound, which the report says.
        new("ALTER TABLE jobs ADD COLUMN cgroup_gone INTEGER NOT NULL DEFAULT 0;",
            Postgres: "ALTER TABLE jobs ADD COLUMN cgroup_gone BIGINT NOT NULL DEFAULT 0;"),

        // v8: the same for each step: the periods in which its job's cgroup was found gone and the step's part missed its
        // CPU time since the read before (flags=8 on the step's rows, also where the job's share took it from a parent).
        new("ALTER TABLE steps ADD COLUMN cgroup_gone INTEGER NOT NULL DEFAULT 0;",
            Postgres: "ALTER TABLE steps ADD COLUMN cgroup_gone BIGINT NOT NULL DEFAULT 0;"),
    ];

    /// <summary>
    /// When a row's run ended, for the report's time window: its end time, or for a row without one (nothing measured,
    /// no time known) its last update. <see cref="WindowStart"/> is the matching start. The report filters on exactly
    /// these texts so that both back ends use the v6 indexes.
    /// </summary>
    public const string WindowEnd = "CASE WHEN end_time = '' THEN updated_at ELSE end_time END";

    public const string WindowStart = "CASE WHEN end_time = '' THEN updated_at ELSE start_time END";

    public static int Version => Migrations.Length;

    private static string QualityColumns(string real)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var table in (string[])["jobs", "steps"])
            foreach (var c in (string[])["energy_u_interfaces_j", "energy_u_attribution_j", "energy_u_random_j", "energy_missed_max_j", "energy_u_k", "total_energy_u_j"])
                sb.Append($"ALTER TABLE {table} ADD COLUMN {c} {real} NOT NULL DEFAULT 0;\n");
        foreach (var c in (string[])["facility_energy_j", "facility_energy_u_j", "co2e_g", "co2e_u_g"])
            sb.Append($"ALTER TABLE jobs ADD COLUMN {c} {real};\n"); // NULL: not configured or not computable
        sb.Append("ALTER TABLE jobs ADD COLUMN carbon_basis TEXT NOT NULL DEFAULT '';\n");
        sb.Append("ALTER TABLE jobs ADD COLUMN carbon_note TEXT NOT NULL DEFAULT '';\n");
        return sb.ToString();
    }

    /// <summary>yyyyMMddTHHmmssfffZ from a start_time 'yyyy-MM-ddTHH:mm:ss.ffffffZ' (same SQL on both back ends).</summary>
    private const string RunIdOfStart =
        "CASE WHEN start_time = '' THEN '' ELSE substr(start_time, 1, 4) || substr(start_time, 6, 2) || substr(start_time, 9, 2) || 'T' || "
        + "substr(start_time, 12, 2) || substr(start_time, 15, 2) || substr(start_time, 18, 2) || substr(start_time, 21, 3) || 'Z' END";

    private const string Indexes = """
        CREATE INDEX jobs_by_job ON jobs(job_id);
        CREATE INDEX jobs_by_user ON jobs("user");
        CREATE INDEX jobs_by_uid ON jobs(uid);
        CREATE INDEX jobs_by_start ON jobs(start_time);
        """;

    /// <summary>PostgreSQL's first schema: v1 and v2 of SQLite in one step (there are no v1 PostgreSQL databases).
    /// A property, not a field: <see cref="Migrations"/> above is initialized before any field declared after it.</summary>
    private static string PostgresV2 => $$"""
        CREATE TABLE jobs ({{JobsColumns("DOUBLE PRECISION", "BIGINT")}},
            run_id TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (cluster, scheduler, job_id, node, run_id)
        );
        CREATE TABLE steps ({{StepsColumns("DOUBLE PRECISION", "BIGINT")}},
            run_id TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (cluster, scheduler, job_id, node, run_id, step_id),
            FOREIGN KEY (cluster, scheduler, job_id, node, run_id) REFERENCES jobs(cluster, scheduler, job_id, node, run_id) ON DELETE CASCADE
        );
        {{Indexes}}
        """;

    private static string JobsColumns(string real, string integer) => $$"""
            cluster TEXT NOT NULL,
            scheduler TEXT NOT NULL,
            job_id TEXT NOT NULL,
            node TEXT NOT NULL,
            "user" TEXT NOT NULL,
            uid {{integer}} NOT NULL,
            {{MeasuredColumns(real)}},
            frequency_hz {{real}} NOT NULL DEFAULT 0,
            frequency TEXT NOT NULL DEFAULT '',
            interfaces TEXT NOT NULL DEFAULT '',
            estimated {{integer}} NOT NULL DEFAULT 0,
            estimate_model TEXT NOT NULL DEFAULT '',
            perimeter TEXT NOT NULL DEFAULT '',
            attribution_mode TEXT NOT NULL DEFAULT '',
            storage_period_ms {{integer}} NOT NULL DEFAULT 0,
            sample_count {{integer}} NOT NULL DEFAULT 0,
            wrap_ambiguous {{integer}} NOT NULL DEFAULT 0,
            read_errors {{integer}} NOT NULL DEFAULT 0,
            node_energy_j {{real}} NOT NULL DEFAULT 0,
            unattributed_energy_j {{real}} NOT NULL DEFAULT 0,
            other_jobs_energy_j {{real}} NOT NULL DEFAULT 0,
            status TEXT NOT NULL CHECK (status IN ('complete','partial','not_measured')),
            reason TEXT NOT NULL DEFAULT '',
            parquet_path TEXT NOT NULL DEFAULT '',
            tool_version TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL DEFAULT ''
        """;

    /// <summary>Times, energies and powers: the same columns, in the same place, in jobs and steps.</summary>
    private static string MeasuredColumns(string real) => $"""
            start_time TEXT NOT NULL DEFAULT '',
            end_time TEXT NOT NULL DEFAULT '',
            elapsed_s {real} NOT NULL DEFAULT 0,
            energy_package_j {real} NOT NULL DEFAULT 0,
            energy_core_j {real} NOT NULL DEFAULT 0,
            energy_uncore_j {real} NOT NULL DEFAULT 0,
            energy_dram_j {real} NOT NULL DEFAULT 0,
            energy_psys_j {real} NOT NULL DEFAULT 0,
            energy_gpu_j {real} NOT NULL DEFAULT 0,
            total_energy_j {real} NOT NULL DEFAULT 0,
            ave_power_w {real} NOT NULL DEFAULT 0,
            max_power_w {real} NOT NULL DEFAULT 0
        """;

    private static string StepsColumns(string real, string integer) => $$"""
            cluster TEXT NOT NULL,
            scheduler TEXT NOT NULL,
            job_id TEXT NOT NULL,
            node TEXT NOT NULL,
            step_id TEXT NOT NULL,
            {{MeasuredColumns(real)}},
            sample_count {{integer}} NOT NULL DEFAULT 0,
            wrap_ambiguous {{integer}} NOT NULL DEFAULT 0
        """;
}
