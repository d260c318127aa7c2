-- Queries on alumet-hpc Parquet files (schema 2, README "Parquet schema"), for DuckDB (CLI, Python, R ...).
-- examples/notebook.ipynb runs them; tests/Alumet.Hpc.Tests/Outputs/QueriesSqlTests.cs runs every one of them on a
-- generated job and dataset, so this file and the notebook cannot drift from the files the tool writes.
-- Each block starts with "-- name: <name>"; parameters are DuckDB variables set before running a block:
--   SET VARIABLE job_files = ['/data/jobs/cluster=lab/year=2026/month=11/slurm.1234.n1.20261130T101500000Z.5c1e0f7a9b2d4e68.parquet'];
--     (the job's files: alumet-report --job 1234 --parquet prints them)
--   SET VARIABLE period_s = 10;      -- timeline resolution, seconds
--   SET VARIABLE dataset = '/data/jobs/*/*/*/*.parquet';   -- every job file of every cluster
--   SET VARIABLE cluster = 'lab'; SET VARIABLE year = 2026; SET VARIABLE month = 11;

-- name: samples
-- The job's rows with energy in J, power in W and the interval's start. Power per row is exact for the interval but,
-- at 1 kHz, aliases with RAPL's ~1 ms update: use power_timeline for a readable curve.
CREATE OR REPLACE VIEW samples AS
SELECT COLUMNS(c -> c <> 'energy_j'),
       energy_raw * joules_per_unit AS energy_j,
       energy_raw * joules_per_unit / (interval_us / 1e6) AS power_w,
       "timestamp" - to_microseconds(interval_us) AS interval_start
FROM read_parquet(getvariable('job_files'), hive_partitioning = false, union_by_name = true);

-- name: power_timeline
-- Power per domain and consumer per period, energy-weighted (Σ energy / Σ time): each row counts in the period that
-- holds the middle of its interval.
CREATE OR REPLACE VIEW power_timeline AS
SELECT time_bucket(to_seconds(getvariable('period_s')), "timestamp" - to_microseconds(interval_us // 2),
                   (SELECT min(interval_start) FROM samples)) AS period,
       domain, consumer, any_value(counts_in_total) AS counts_in_total,
       sum(energy_j) / (sum(interval_us) / 1e6) AS power_w,
       sum(energy_j) AS energy_j
FROM samples
GROUP BY period, domain, consumer;

-- name: job_vs_node
-- Per period: the job's power beside the node's, the other jobs' and the unattributed part (domains that count in
-- TotalEnergy: package + DRAM + GPU). job + other_jobs + unattributed = node.
SELECT period,
       sum(power_w) FILTER (consumer LIKE 'job:%') AS job_w,
       sum(power_w) FILTER (consumer = 'node') AS node_w,
       sum(power_w) FILTER (consumer = 'other_jobs') AS other_jobs_w,
       sum(power_w) FILTER (consumer = 'unattributed') AS unattributed_w
FROM power_timeline
WHERE counts_in_total
GROUP BY period
ORDER BY period;

-- name: job_energy
-- The job's energy per domain (what alumet-report's table sums), J.
SELECT domain, consumer, counts_in_total, sum(energy_j) AS energy_j, sum(interval_us) / 1e6 AS seconds
FROM samples
GROUP BY ALL
ORDER BY consumer, domain;

-- name: energy_per_user_month
-- Energy of each user's jobs over one month of a cluster, from the whole dataset. The hive keys (cluster, year,
-- month) are directory names: the engine opens only that month's files.
SELECT "user",
       count(DISTINCT job_id || '/' || run_id) AS jobs,
       sum(energy_raw * joules_per_unit) AS energy_j,
       sum(energy_raw * joules_per_unit) / 3.6e6 AS energy_kwh
FROM read_parquet(getvariable('dataset'), hive_partitioning = true)
WHERE cluster = getvariable('cluster') AND year = getvariable('year') AND month = getvariable('month')
  AND consumer LIKE 'job:%' AND counts_in_total
GROUP BY "user"
ORDER BY energy_j DESC;
