#!/bin/bash
# run.sh - the Slurm end-to-end tests from a fresh clone: publish (if needed), start the lab, run the
# gated xunit class, leave the lab running (stop: tests/e2e/slurm/slurm-lab.sh stop).  Needs root.
#   KEEP_LAB=0 stops the lab afterwards.  Exit status = the tests'.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
cd "$REPO"
BIN=${ALUMET_HPC_BIN:-$REPO/out/bin/alumet-hpc}
if [ ! -x "$BIN" ]; then
  if grep -q '^publish:' Makefile 2>/dev/null; then make publish; else dotnet publish src/Alumet.Hpc.Cli -c Release -r linux-x64 -o out/bin; fi
fi
export ALUMET_HPC_BIN=$BIN
"$HERE/slurm-lab.sh" start
. "${LAB:-/var/lib/alumet-hpc-e2e/slurm}/env.sh"
t0=$(date +%s)
rc=0
ALUMET_E2E_SLURM=1 dotnet test tests/Alumet.Hpc.Tests -c Release --filter "FullyQualifiedName~Alumet.Hpc.Tests.Schedulers.Slurm.SlurmE2ETests" || rc=$?
echo "[slurm-e2e] tests took $(( $(date +%s) - t0 )) s (rc=$rc); prolog timings: $(tail -1 "$ALUMET_E2E_SLURM_LAB/log/prolog-timing.txt" 2>/dev/null)"
[ "${KEEP_LAB:-1}" = 1 ] || "$HERE/slurm-lab.sh" stop
exit $rc
