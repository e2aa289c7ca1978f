#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# it_reload.sh: `pcpctl reload` tells the truth. A good file is reloaded (exit 0); a file with an
# error is refused with its file:line on pcpctl's output and exit status 1, pcpd logs
# config.reload_failed, keeps serving with the running configuration, and a fixed file reloads.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
lab_init it_reload
lab_up
conf=$LAB_DIR/pcpd.conf
lab_ctl_config "$conf"
cp "$conf" "$LAB_DIR/good.conf"
lab_pcpd_start "$conf"
r=$LAB_DIR/r

pcpctl reload >"$r.good" 2>&1
rc=$?
lab_ev <"$r.good"
check "a good file: pcpctl reload exits 0" lab_eq exit "$rc" 0
check "and says what it reloaded" grep -q "^reloaded $conf" "$r.good"

# An unknown key on a line of its own, at a known line number.
printf '\n[mappings]\nno_such_key = 1\n' >>"$conf"
line=$(grep -n '^no_such_key' "$conf" | cut -d: -f1)
pcpctl reload >"$r.bad" 2>&1
rc=$?
lab_ev <"$r.bad"
check "a bad file: pcpctl reload exits 1" lab_eq exit "$rc" 1
check "the error names the file and line ($conf:$line)" grep -q "$conf:$line" "$r.bad"
check "pcpd logged config.reload_failed" grep -q 'config.reload_failed' "$LAB_PCPD_LOG"
check "pcpd still runs" kill -0 "$LAB_PCPD_PID"
check "and serves a MAP with the running configuration" lab_pc "$r.map" -s 192.0.2.1 map -p tcp -i 8080 -l 600
check "result SUCCESS" lab_eq result "$(lab_json "$r.map" result)" SUCCESS

cp "$LAB_DIR/good.conf" "$conf"
pcpctl reload >"$r.fixed" 2>&1
rc=$?
check "the fixed file reloads (exit 0)" lab_eq exit "$rc" 0
lab_finish
