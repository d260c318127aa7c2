#!/usr/bin/env bash
# bmc-sim.sh: a real BMC simulator for the tests and the bench: Debian's ipmi_sim (package openipmi) on
# 127.0.0.1 with the DCMI module dcmi_power.c and a file-backed power sensor (unit Watts).
#   bmc-sim.sh start DIR PORT   build the module into DIR, write the configs, start ipmi_sim; prints its pid
#   bmc-sim.sh stop DIR         stop the ipmi_sim started for DIR (by the pid it recorded)
# DIR/bmc.script scripts the DCMI answers (see dcmi_power.c); DIR/sensor_watts holds the sensor's watts (even
# numbers are exact: the SDR's M factor is 2). User "alumet", password in DIR/password, cipher suite 3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: bmc-sim.sh start DIR PORT | stop DIR}
dir=${2:?DIR}
case $cmd in
start)
  port=${3:?PORT}
  command -v ipmi_sim >/dev/null || { echo "bmc-sim: ipmi_sim not found: apt-get install openipmi libopenipmi-dev" >&2; exit 1; }
  mkdir -p "$dir/state"
  gcc -shared -fPIC -O2 -Wall -o "$dir/dcmi_power.so" "$here/dcmi_power.c"
  [ -f "$dir/bmc.script" ] || echo "watts 0" > "$dir/bmc.script"
  [ -f "$dir/sensor_watts" ] || echo 0 > "$dir/sensor_watts"
  printf 'secret' > "$dir/password"
  cat > "$dir/lan.conf" <<CONF
name "alumet-bmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $port
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  user 1 true  ""       "test"   user  10 none md2 md5 straight
  user 2 true  "alumet" "secret" admin 10 none md2 md5 straight
loadlib "$dir/dcmi_power.so" "script=$dir/bmc.script"
CONF
  # Full sensor record (IPMI 2.0 table 43-1): owner 0x20 LUN 0 sensor 0x10, entity system board, type 0x0B
  # (other units-based), threshold reading type, unsigned, base unit 6 = Watts, linear, M = 2, B = 0, exponents 0,
  # id string "Pwr Consumption". ipmi_sim reads the file every 100 ms and divides by 2 (raw = W / M).
  # DIR/sdr_units1, when present, is the record's sensor units 1 byte (e.g. 0x28: Watts per hour); default 0x00.
  units1=0x00
  [ -f "$dir/sdr_units1" ] && units1=$(cat "$dir/sdr_units1")
  cat > "$dir/bmc.emu" <<EMU
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
sel_enable 0x20 50 0x0a
sensor_add 0x20 0 0x10 0x0b 0x01 poll 100 file "$dir/sensor_watts" div=2
main_sdr_add 0x20 0x00 0x00 0x51 0x01 0x3a 0x20 0x00 0x10 0x07 0x01 0x43 0x40 0x0b 0x01 0x00 0x00 0x00 0x00 0x00 0x00 $units1 0x06 0x00 0x00 0x02 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0xff 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0x00 0xcf 0x50 0x77 0x72 0x20 0x43 0x6f 0x6e 0x73 0x75 0x6d 0x70 0x74 0x69 0x6f 0x6e
sensor_set_event_support 0x20 0 0x10 enable scanning per-state 000000000000000 000000000000000 000000000000000 000000000000000
mc_enable 0x20
EMU
  # SIGPIPE ignored: ipmi_sim dies on it when a console client goes away early. -n: no console on stdin.
  (trap '' PIPE; exec setsid ipmi_sim -n -c "$dir/lan.conf" -f "$dir/bmc.emu" -s "$dir/state" </dev/null >"$dir/ipmi_sim.log" 2>&1) &
  pid=$!
  echo "$pid" > "$dir/ipmi_sim.pid"
  # Ready when it answers a Get Device ID over the LAN (at most ~5 s).
  for _ in $(seq 50); do
    if ipmitool -I lanplus -C 3 -H 127.0.0.1 -p "$port" -U alumet -P secret -N 1 -R 1 raw 6 1 >/dev/null 2>&1; then echo "$pid"; exit 0; fi
    case $(ps -o stat= -p "$pid" 2>/dev/null) in ''|Z*) echo "bmc-sim: ipmi_sim exited: $(tail -5 "$dir/ipmi_sim.log")" >&2; exit 1 ;; esac
    sleep 0.1
  done
  echo "bmc-sim: ipmi_sim on 127.0.0.1:$port did not answer within 5 s: $(tail -5 "$dir/ipmi_sim.log")" >&2
  kill "$pid" 2>/dev/null || true
  exit 1 ;;
stop)
  [ -f "$dir/ipmi_sim.pid" ] || exit 0
  pid=$(cat "$dir/ipmi_sim.pid")
  kill -CONT "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/ipmi_sim.pid" ;;
*) echo "usage: bmc-sim.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
