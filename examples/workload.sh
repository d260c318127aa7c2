#!/bin/sh
# A sample workload for the demo: keeps N CPUs busy for S seconds (defaults: 2 CPUs, 3 s), then exits 0.
n=${1:-2}; s=${2:-3}
end=$(( $(date +%s) + s ))
i=0
while [ "$i" -lt "$n" ]; do
  ( while [ "$(date +%s)" -lt "$end" ]; do :; done ) &
  i=$((i + 1))
done
wait
