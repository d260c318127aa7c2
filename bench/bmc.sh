#!/usr/bin/env bash
# bench/bmc.sh: cost of one BMC power reading by mechanism, against the ipmi_sim rig (tests/e2e/bmc) on 127.0.0.1:
#   libfreeipmi, session kept open (what the BMC source does): bench/bmc_read.c, BENCH_BMC_N requests (default 500)
#   a FreeIPMI process per reading: `ipmi-dcmi --get-system-power-statistics` (new session each time)
#   an ipmitool process per reading: `ipmitool -I lanplus -C 3 dcmi power reading` (new session each time)
# Wall and CPU time per reading (CPU: the client's user + sys; the simulator's own time is not counted). Prints `uptime`:
# the machine may be loaded by others. Skipped (exit 0, one line) when ipmi_sim is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
N=${BENCH_BMC_N:-500}
PROC_N=${BENCH_BMC_PROC_N:-20}
command -v ipmi_sim >/dev/null || { echo "bmc: not run (ipmi_sim not installed: apt-get install openipmi libopenipmi-dev)"; exit 0; }
dir=$(mktemp -d /tmp/alumet-bench-bmc.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 16624)
trap '"$here/../tests/e2e/bmc/bmc-sim.sh" stop "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
echo "watts 300" > "$dir/bmc.script"
"$here/../tests/e2e/bmc/bmc-sim.sh" start "$dir" "$port" >/dev/null
gcc -O2 -o "$dir/bmc_read" "$here/bmc_read.c" -lfreeipmi
host=127.0.0.1:$port

lib=$("$dir/bmc_read" "$host" alumet secret "$N")

# per-process mechanisms: wall from the monotonic clock, CPU from the children's times (bash `times`, 2nd line)
proc_cost() { # label command...
  local t0 t1 c0 c1 me=$BASHPID # this (sub)shell: its children's CPU lands in its cutime/cstime
  t0=$(date +%s%N)
  c0=$(awk '{print $14+$15+$16+$17}' /proc/$me/stat)
  for _ in $(seq "$PROC_N"); do "$@" >/dev/null 2>&1 || echo "bmc: $1 failed" >&2; done
  t1=$(date +%s%N)
  c1=$(awk '{print $14+$15+$16+$17}' /proc/$me/stat)
  local tck; tck=$(getconf CLK_TCK)
  echo "$(( (t1 - t0) / PROC_N / 1000 ))" "$(( (c1 - c0) * 1000000 / tck / PROC_N ))"
}
read -r dcmi_us dcmi_cpu_us < <(proc_cost ipmi-dcmi -h "$host" -u alumet -p secret -l ADMIN -W opensesspriv --get-system-power-statistics)
read -r tool_us tool_cpu_us < <(proc_cost ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$port" -U alumet -P secret dcmi power reading)

echo "bmc: cost of one power reading against ipmi_sim on 127.0.0.1 ($(uptime | sed 's/.*load average/load average/'))"
set -- $lib
printf '  %-46s %9s %9s\n' mechanism "wall ms" "CPU ms"
printf '  %-46s %9s %9s   (session open %s ms, %s requests, %s W)\n' "libfreeipmi, session kept open (the source)" "$4" "$6" "$2" "$N" "${10}"
printf '  %-46s %9.2f %9.2f   (%s runs)\n' "ipmi-dcmi process per reading (FreeIPMI)" "$(echo "$dcmi_us/1000" | bc -l)" "$(echo "$dcmi_cpu_us/1000" | bc -l)" "$PROC_N"
printf '  %-46s %9.2f %9.2f   (%s runs)\n' "ipmitool process per reading (lanplus -C 3)" "$(echo "$tool_us/1000" | bc -l)" "$(echo "$tool_cpu_us/1000" | bc -l)" "$PROC_N"
