#!/usr/bin/env bash
# run-all.sh BIN — what `make test` runs: every xunit test (unit, integration against the native binary, and
# the real-scheduler end-to-end classes), ending with one "N passed, N failed, N skipped" line.
#   ALUMET_E2E_SLURM=1  start the project's Slurm lab (tests/e2e/slurm, root) and run the Slurm e2e tests
#   ALUMET_E2E_OAR=1    start the project's OAR lab (tests/e2e/oar, root) and run the OAR e2e tests
#   ALUMET_E2E_PG=1     start a private PostgreSQL server (tests/e2e/postgres, root) and run the accounting tests
#                       against it as well as SQLite (without it the PostgreSQL cases are skipped)
#   ALUMET_E2E_SLURM_MULTI=1  start a second Slurm lab with two logical nodes n1, n2 (multiple slurmd, own ports, cluster
#                       "mlab") writing to that PostgreSQL server (started too), and run the multi-node tests
#   KEEP_LABS=1         leave the labs running afterwards (default: stop the ones started here)
# Without those variables the e2e tests are reported as skipped; with one set, a lab that is down fails them.
set -uo pipefail
BIN=${1:?usage: run-all.sh <path to alumet-hpc>}
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
export ALUMET_HPC_BIN=$BIN
mkdir -p out
started=()

if [ "${ALUMET_E2E_SLURM:-0}" = 1 ]; then
  echo "== starting the Slurm lab"
  if tests/e2e/slurm/slurm-lab.sh start; then
    started+=(slurm)
    # SLURM_CONF, ALUMET_E2E_SLURM_LAB, ALUMET_E2E_SLURM_USER for the tests
    . "${LAB:-/var/lib/alumet-hpc-e2e/slurm}/env.sh"
  else
    echo "run-all: the Slurm lab did not start: the Slurm e2e tests will fail" >&2
  fi
fi
if [ "${ALUMET_E2E_PG:-0}" = 1 ]; then
  echo "== starting the PostgreSQL lab"
  if tests/e2e/postgres/pg-lab.sh start; then
    started+=(postgres)
    . "${PG_LAB:-/var/lib/alumet-hpc-e2e/postgres}/env.sh"   # ALUMET_TEST_PG_URL, ALUMET_TEST_PG_PASSWORD_FILE
  else
    echo "run-all: the PostgreSQL lab did not start: the PostgreSQL tests will fail" >&2
  fi
fi
# The multi-node lab: its own LAB, ports and cluster name, so it runs beside the single-node lab. Its env.sh is not
# sourced (its SLURM_CONF would replace the single-node lab's): the tests read the lab's slurm.conf themselves.
MULTI_LAB=(env LAB=/var/lib/alumet-hpc-e2e/slurm-multi LAB_NODES=2 SLURMCTLD_PORT=6827 SLURMD_PORT=6828 CLUSTER_NAME=mlab)
if [ "${ALUMET_E2E_SLURM_MULTI:-0}" = 1 ]; then
  if [ "${ALUMET_E2E_PG:-0}" != 1 ]; then
    echo "== starting the PostgreSQL lab (for the multi-node Slurm lab)"
    if tests/e2e/postgres/pg-lab.sh start; then started+=(postgres); . "${PG_LAB:-/var/lib/alumet-hpc-e2e/postgres}/env.sh"
    else echo "run-all: the PostgreSQL lab did not start: the multi-node Slurm tests will fail" >&2; fi
  fi
  echo "== starting the multi-node Slurm lab"
  t_multi=$(date +%s)
  if "${MULTI_LAB[@]}" LAB_DB_ENV="${PG_LAB:-/var/lib/alumet-hpc-e2e/postgres}/env.sh" tests/e2e/slurm/slurm-lab.sh start; then
    started+=(slurm-multi)
    export ALUMET_E2E_SLURM_MULTI_LAB=/var/lib/alumet-hpc-e2e/slurm-multi
    echo "== multi-node Slurm lab up in $(( $(date +%s) - t_multi )) s"
  else
    echo "run-all: the multi-node Slurm lab did not start: the multi-node Slurm tests will fail" >&2
  fi
fi
if [ "${ALUMET_E2E_OAR:-0}" = 1 ]; then
  echo "== starting the OAR lab"
  if tests/e2e/oar/oar-lab.sh start; then started+=(oar)
  else echo "run-all: the OAR lab did not start: the OAR e2e tests will fail" >&2; fi
fi

echo "== dotnet test"
dotnet test Alumet.Hpc.sln -c "${CONFIG:-Release}" --logger "console;verbosity=normal" 2>&1 | tee out/test.log
rc=${PIPESTATUS[0]}

if [ "${KEEP_LABS:-0}" != 1 ]; then
  for lab in "${started[@]}"; do
    case $lab in
      slurm) tests/e2e/slurm/slurm-lab.sh stop >/dev/null 2>&1 || true ;;
      slurm-multi) "${MULTI_LAB[@]}" tests/e2e/slurm/slurm-lab.sh stop >/dev/null 2>&1 || true ;;
      oar) tests/e2e/oar/oar-lab.sh stop >/dev/null 2>&1 || true ;;
      postgres) tests/e2e/postgres/pg-lab.sh stop >/dev/null 2>&1 || true ;;
    esac
  done
fi

# vstest's closing block at normal verbosity: "Total tests: N" then "     Passed: N", "     Failed: N", "    Skipped: N"
# (the last two only when non-zero).
block=$(sed -n '/^Total tests:/,/^ *Total time:/p' out/test.log)
count() { sed -nE "s/^ *$1: *([0-9]+).*/\1/p" <<<"$block" | tail -1; }
passed=$(count Passed); failed=$(count Failed); skipped=$(count Skipped)
if [ -z "$passed" ]; then
  echo "run-all: no test summary found (build failure?)" >&2
  exit $(( rc == 0 ? 1 : rc ))
fi
failed=${failed:-0}; skipped=${skipped:-0}
# CI keeps only the tail of its output: repeat each failed test's name and the first lines of its message last.
if [ "$failed" != 0 ]; then
  echo "== failed tests (first lines of each; the whole output is in out/test.log)"
  awk '/^  Failed [A-Za-z]/ {n=14} /^  (Passed|Skipped) / {n=0} n>0 {print; n--}' out/test.log | grep -v '^ *at ' | head -120
fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$rc"
