#!/bin/bash
# powercap-ticker.sh ZONE_DIR WATTS -- advance a generated powercap zone's energy_uj as a constant WATTS load.
# energy_uj = WATTS x (wall time since start), modulo max_energy_range_uj + 1, so the energy between two
# instants is known exactly whatever the ticker's jitter. Written in place, fixed width (20 digits, no
# truncation): a reader keeping the file open (pread at offset 0) never sees a short or empty value.
set -u
zone=$1; watts=$2
max=$(cat "$zone/max_energy_range_uj")
t0=${EPOCHREALTIME/./}
echo "$$ t0_us=$t0 watts=$watts" > "$zone/../ticker.info"
while :; do
  now=${EPOCHREALTIME/./}
  e=$(( ((now - t0) * watts) % (max + 1) ))   # W x us = uJ
  printf '%020d\n' "$e" 1<>"$zone/energy_uj"
  sleep 0.02
done
