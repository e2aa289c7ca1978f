# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# ha-lab.sh: a two-router pcpd HA lab (keepalived VRRP + conntrackd FTFW), sourced by
# tests/integration/ha_*.sh. Builds on scripts/lab.sh (trap, watchdog, check, lab_pc, lab_json).
#
#  cli 192.0.2.10 (+.11) ─┐ brlan (sw) ┌─ lan0  r1  wan0 ─┐ brwan (sw) ┌─ srv 203.0.113.100
#                         └────────────┴─ lan0  r2  wan0 ─┴────────────┘
#  VIPs (keepalived on lan0, from ha/keepalived.conf): 192.0.2.1 (gateway, PCP server) and
#  203.0.113.1 (NAT address). Own addresses: r1 192.0.2.2 / 203.0.113.2, r2 .3 / .3.
#  Sync link r1 sync0 198.51.100.1/30 <-> r2 sync0 198.51.100.2/30 (conntrackd FTFW over UDP).
#  Both routers: ha/90-pcpd-conntrack.conf (sysctl), nft-rules/example-router.nft, ha/nat-vip.nft
#  (SNAT to the WAN VIP), nft-rules/pcpd.nft, ha/conntrackd.conf (paths and addresses per router), ha/keepalived.conf
#  (priority 150 on r1, 100 on r2, advert_int $HA_ADVERT_INT (0.5) for a faster lab, notify ->
#  ha/pcpd-ha-notify with the router's CONNTRACKD_CONF / PCPD_CTL_SOCKET / PCPCTL), pcpd with
#  its own [daemon] control_socket and state_dir. Flows count as broken after $HA_FLOW_TIMEOUT
#  (12) s without an echo or when the endpoint the far end sees changes.
#
# Usage:
#   source scripts/ha-lab.sh
#   ha_init NAME            lab_init + namespaces names + pcpctl + helper program
#   ha_up                   namespaces, bridges, links, addresses, sysctl, rulesets
#   ha_ctd_start r1|r2, ha_ctd_stop r1|r2      conntrackd in foreground (PID tracked)
#   ha_ka_start r1|r2                          keepalived
#   ha_pcpd_start r1|r2 [section.key=value...] pcpd with its own control socket and state dir
#                           (and $HA_CHECKPOINT_CONF lines as its [checkpoint] table, then the
#                           $HA_STATIC_CONF text (e.g. [[static]] tables) as it is; after
#                           ha_peer_key, an [ha] table: peer = the other sync0 address, key
#                           $HA_KEY_FILE or the shared one, plus $HA_PEER_CONF lines)
#   ha_peer_key             a shared pre-shared key for the pcpd peer link ($LAB_DIR/ha.key)
#   ha_ctd r1|r2 ARGS...    conntrackd client command (-i, -e, -s, ...)
#   ha_ctl r1|r2 ARGS...    pcpctl on that router's socket
#   ha_flow ID NS PROTO DST DPORT SPORT        long-lived echo flow (status in $HA_APP/ID.st),
#                           a message every $HA_FLOW_INTERVAL (0.2) s; ha_gap_reset / ha_maxgap ID
#   ha_serve NS PORTS...    TCP+UDP echo server that reports the peer endpoint it sees
#   ha_running ID / ha_broken ID / ha_close ID / ha_vip_on r1|r2 / ha_waitfor S CMD...
#   ha_ct_sports r1|r2 -i|-e      sorted original source ports in a conntrackd cache
# Every PID started is recorded (lab_spawn) and killed on exit; the namespaces are deleted.

# shellcheck source=scripts/lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/lab.sh"

HA_VIP_LAN=192.0.2.1
HA_VIP_WAN=203.0.113.1

ha_init() {
  : "${LAB_WATCHDOG:=200}"
  export LAB_WATCHDOG
  lab_init "$1"
  local b
  for b in conntrack conntrackd keepalived sysctl; do
    command -v "$b" >/dev/null || lab_die "missing $b (apt-get install conntrack conntrackd keepalived)"
  done
  local bd=${PCPD_BUILD_DIR:-$LAB_SRC/build}
  PCPCTL_BIN=${PCPCTL_BIN:-$bd/src/pcpctl/pcpctl}
  [ -x "$PCPCTL_BIN" ] || lab_die "pcpctl binary not found at $PCPCTL_BIN (build: ninja -C $bd pcpctl)"
  HA_SW=pcpha-sw-$LAB_RND
  HA_CLI=pcpha-cli-$LAB_RND
  HA_R1=pcpha-r1-$LAB_RND
  HA_R2=pcpha-r2-$LAB_RND
  HA_SRV=pcpha-srv-$LAB_RND
  LAB_CLI=$HA_CLI # lab_pcpc / lab_pc run pcpc here
  LAB_RTR=$HA_R1
  LAB_WAN=$HA_SRV
  HA_APP=$LAB_DIR/app
  mkdir -p "$HA_APP" "$LAB_DIR/r1" "$LAB_DIR/r2"
  ha_write_tool
  HA_TOOL=$LAB_DIR/haflow.py
  trap ha_cleanup EXIT
}

ha_ns() { case $1 in r1) echo "$HA_R1" ;; r2) echo "$HA_R2" ;; *) echo "$1" ;; esac; }
ha_x() {
  local ns
  ns=$(ha_ns "$1")
  shift
  ip netns exec "$ns" "$@"
}

# Extra teardown before lab_cleanup: notify scripts and other children of keepalived run from
# our private directory; they are ours, found by that directory in their command line.
ha_cleanup() {
  local rc=$? d p c
  trap - EXIT
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = $$ ] && continue
    c=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    [[ $c == *"$LAB_DIR/"* ]] && LAB_PIDS+=("$p")
  done
  (exit $rc)
  lab_cleanup
}

ha_waitfor() { # ha_waitfor SECONDS CMD...: poll every 0.2 s
  local n=$(($1 * 5)) i
  shift
  for i in $(seq 1 "$n"); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

ha_up() {
  local n r i
  for n in "$HA_SW" "$HA_CLI" "$HA_R1" "$HA_R2" "$HA_SRV"; do
    ip netns add "$n" || lab_die "ip netns add $n"
    LAB_NS+=("$n")
    ip -n "$n" link set lo up
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  done
  modprobe nf_conntrack 2>/dev/null || true
  for n in brlan brwan; do
    ip -n "$HA_SW" link add "$n" type bridge stp_state 0 forward_delay 0
    ip -n "$HA_SW" link set "$n" up
  done
  ha_att() { # NS IFNAME BRIDGE PORT
    ip link add "$4" netns "$HA_SW" type veth peer name "$2" netns "$1" || lab_die "veth $4"
    ip -n "$HA_SW" link set "$4" master "$3" up
    ip -n "$1" link set "$2" up
  }
  ha_att "$HA_CLI" eth0 brlan p-cli
  ha_att "$HA_R1" lan0 brlan p-r1l
  ha_att "$HA_R2" lan0 brlan p-r2l
  ha_att "$HA_R1" wan0 brwan p-r1w
  ha_att "$HA_R2" wan0 brwan p-r2w
  ha_att "$HA_SRV" eth0 brwan p-srv
  ip link add sync0 netns "$HA_R1" type veth peer name sync0 netns "$HA_R2" || lab_die "veth sync0"
  ip -n "$HA_R1" addr add 198.51.100.1/30 dev sync0
  ip -n "$HA_R2" addr add 198.51.100.2/30 dev sync0
  ip -n "$HA_R1" link set sync0 up
  ip -n "$HA_R2" link set sync0 up
  ip -n "$HA_CLI" addr add 192.0.2.10/24 dev eth0
  ip -n "$HA_CLI" addr add 192.0.2.11/24 dev eth0
  ip -n "$HA_CLI" route add default via $HA_VIP_LAN
  ip -n "$HA_SRV" addr add 203.0.113.100/24 dev eth0
  i=2
  for r in r1 r2; do
    n=$(ha_ns $r)
    ip -n "$n" addr add 192.0.2.$i/24 dev lan0
    ip -n "$n" addr add 203.0.113.$i/24 dev wan0
    i=$((i + 1))
    ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1
    # the shipped sysctl file (nf_conntrack_events = 1)
    ip netns exec "$n" sysctl -q -p "$LAB_SRC/ha/90-pcpd-conntrack.conf" >/dev/null ||
      lab_die "sysctl -p ha/90-pcpd-conntrack.conf in $r"
    ha_rules "$r"
  done
  lab_log "HA lab up: $HA_CLI -- {$HA_R1, $HA_R2} -- $HA_SRV, sync link 198.51.100.0/30"
}

# The same ruleset on both routers, as README "High availability" says: the example router
# ruleset (its prerouting chain drops invalid packets and new TCP that is not a SYN: packets
# reaching the new primary before conntrackd's commit must not create state or be reset), then
# ha/nat-vip.nft (source NAT to the WAN VIP), then pcpd's own table.
ha_rules() {
  local r=$1
  ha_x "$r" nft -f "$LAB_SRC/nft-rules/example-router.nft" || lab_die "nft -f example-router.nft in $r"
  ha_x "$r" nft -f "$LAB_SRC/ha/nat-vip.nft" || lab_die "nft -f ha/nat-vip.nft in $r"
  ha_x "$r" nft -f "$LAB_SRC/nft-rules/pcpd.nft" || lab_die "nft -f nft-rules/pcpd.nft in $r"
}

# ha/conntrackd.conf with this router's temp paths (and the UDP addresses swapped on r2).
ha_ctd_conf() {
  local r=$1 d=$LAB_DIR/$1
  sed -e "s|^\(\s*LogFile\) .*|\1 $d/conntrackd.log|" \
    -e "s|^\(\s*LockFile\) .*|\1 $d/conntrackd.lock|" \
    -e "s|^\(\s*Path\) /var/run/conntrackd.ctl|\1 $d/conntrackd.ctl|" \
    "$LAB_SRC/ha/conntrackd.conf" >"$d/conntrackd.conf"
  if [ "$r" = r2 ]; then
    sed -i -e 's/IPv4_address 198.51.100.1$/IPv4_address 198.51.100.X/' \
      -e 's/IPv4_Destination_Address 198.51.100.2$/IPv4_Destination_Address 198.51.100.1/' \
      -e 's/IPv4_address 198.51.100.X$/IPv4_address 198.51.100.2/' "$d/conntrackd.conf"
  fi
  grep -q "$d/conntrackd.ctl" "$d/conntrackd.conf" || lab_die "ha/conntrackd.conf: could not set the UNIX Path"
}

ha_ctd() {
  local r=$1
  shift
  ha_x "$r" conntrackd -C "$LAB_DIR/$r/conntrackd.conf" "$@"
}

ha_ctd_start() {
  local r=$1
  [ -f "$LAB_DIR/$r/conntrackd.conf" ] || ha_ctd_conf "$r"
  rm -f "$LAB_DIR/$r/conntrackd.lock"
  lab_spawn "$(ha_ns "$r")" "$LAB_DIR/$r/ctd.out" conntrackd -C "$LAB_DIR/$r/conntrackd.conf"
  eval "HA_CTD_PID_$r=$LAB_LASTPID"
  ha_waitfor 5 ha_ctd "$r" -s >/dev/null 2>&1 || {
    lab_ev <"$LAB_DIR/$r/ctd.out"
    lab_die "conntrackd did not start in $r"
  }
}

ha_ctd_stop() {
  local pidvar="HA_CTD_PID_$1"
  [ -n "${!pidvar:-}" ] && lab_kill "${!pidvar}" TERM
  eval "HA_CTD_PID_$1="
}

# keepalived from ha/keepalived.conf as shipped, with this router's paths: priority 100 on r2,
# a lab router_id and advert_int, and the notify and check commands routed through wrappers
# that export this router's CONNTRACKD_CONF, PCPD_CTL_SOCKET, PCPCTL and PCPD_HA_ROLE_FILE (the
# variables ha/pcpd-ha-notify and ha/pcpd-ha-check document) and run the shipped scripts.
ha_ka_start() {
  local r=$1 d=$LAB_DIR/$1 prio=150 w
  [ "$r" = r2 ] && prio=100
  for w in notify check; do
    cat >"$d/$w.sh" <<EOF
#!/bin/sh
export CONNTRACKD_CONF=$d/conntrackd.conf PCPD_CTL_SOCKET=$d/ctl.sock PCPCTL=$PCPCTL_BIN PCPD_HA_ROLE_FILE=$d/role
EOF
  done
  cat >>"$d/notify.sh" <<EOF
echo "\$(date +%T.%N) \$1 begin" >>$d/notify.log
$LAB_SRC/ha/pcpd-ha-notify "\$1" >>$d/notify.log 2>&1
echo "\$(date +%T.%N) \$1 end rc=\$?" >>$d/notify.log
EOF
  cat >>"$d/check.sh" <<EOF
$LAB_SRC/ha/pcpd-ha-check
rc=\$?
[ "\$rc" = "\$(cat $d/check.last 2>/dev/null)" ] || echo "\$(date +%T.%N) check rc=\$rc" >>$d/check.log
echo \$rc >$d/check.last
exit \$rc
EOF
  chmod 700 "$d/notify.sh" "$d/check.sh"
  sed -e "s/^\(\s*priority\) 150/\1 $prio/" \
    -e "s|^global_defs {|global_defs {\n\trouter_id pcpha-$r\n\tvrrp_garp_master_repeat 3|" \
    -e "s|\"/usr/share/pcpd/ha/pcpd-ha-notify |\"$d/notify.sh |" \
    -e "s|\"/usr/share/pcpd/ha/pcpd-ha-check\"|\"$d/check.sh\"|" \
    -e "s/^\(\s*advert_int\) .*/\1 ${HA_ADVERT_INT:-0.5}/" "$LAB_SRC/ha/keepalived.conf" >"$d/keepalived.conf"
  # Experiments only (never set by a test): a sed script applied on top, e.g. to measure the
  # pair without the readiness guard.
  [ -n "${HA_KEEPALIVED_EDIT:-}" ] && sed -i -e "$HA_KEEPALIVED_EDIT" "$d/keepalived.conf"
  grep -q "$d/notify.sh primary" "$d/keepalived.conf" || lab_die "ha/keepalived.conf: notify_master not found"
  grep -q "$d/notify.sh stop" "$d/keepalived.conf" || lab_die "ha/keepalived.conf: notify_stop not found"
  grep -q "\"$d/check.sh\"" "$d/keepalived.conf" || lab_die "ha/keepalived.conf: vrrp_script pcpd_ready not found"
  lab_spawn "$(ha_ns "$r")" "$d/keepalived.log" keepalived -n -l -D -P -G -f "$d/keepalived.conf" \
    -p "$d/ka.pid" -r "$d/ka-vrrp.pid" -c "$d/ka-chk.pid"
  eval "HA_KA_PID_$r=$LAB_LASTPID"
}

ha_peer_key() {
  HA_KEY=$LAB_DIR/ha.key
  (umask 077 && head -c 32 /dev/urandom | base64 >"$HA_KEY") || lab_die "cannot write $HA_KEY"
}

ha_vip_on() { ha_x "$1" ip -4 addr show dev lan0 | grep -q "$HA_VIP_LAN/24"; }

# pcpd on a router: NAT address = the WAN VIP, own control socket and state dir.
ha_pcpd_start() {
  local r=$1 d=$LAB_DIR/$1 i
  shift
  mkdir -p "$d/state"
  lab_config "$d/pcpd.conf" 'interfaces.external_address=["203.0.113.1"]' \
    "daemon.state_dir=\"$d/state\"" "daemon.control_socket=\"$d/ctl.sock\"" "$@"
  [ -n "${HA_CHECKPOINT_CONF:-}" ] && printf '[checkpoint]\n%s\n' "$HA_CHECKPOINT_CONF" >>"$d/pcpd.conf"
  [ -n "${HA_STATIC_CONF:-}" ] && printf '%s\n' "$HA_STATIC_CONF" >>"$d/pcpd.conf"
  if [ -n "${HA_KEY:-}" ]; then
    local me=1 peer=2
    [ "$r" = r2 ] && me=2 peer=1
    printf '[ha]\npeer = "198.51.100.%s"\nlisten = "198.51.100.%s"\nkey_file = "%s"\nrole_file = "%s"\n%s\n' \
      "$peer" "$me" "${HA_KEY_FILE:-$HA_KEY}" "$d/role" "${HA_PEER_CONF:-}" >>"$d/pcpd.conf"
  fi
  lab_spawn "$(ha_ns "$r")" "$d/pcpd.log" "$PCPD_BIN" -c "$d/pcpd.conf"
  eval "HA_PCPD_PID_$r=$LAB_LASTPID"
  for i in $(seq 1 100); do
    if ! kill -0 "$LAB_LASTPID" 2>/dev/null; then
      echo "  pcpd in $r exited during start-up; config and log:"
      lab_ev <"$d/pcpd.conf"
      lab_ev <"$d/pcpd.log"
      return 1
    fi
    if ha_x "$r" ss -Hlun 'sport = :5351' | grep -q .; then
      ha_waitfor 2 test -S "$d/ctl.sock" || echo "  pcpd in $r: no control socket at $d/ctl.sock"
      lab_log "pcpd running in $r (pid $LAB_LASTPID)"
      return 0
    fi
    sleep 0.1
  done
  echo "  pcpd in $r: not listening on UDP 5351 after 10 s; log:"
  lab_ev <"$d/pcpd.log"
  return 1
}

ha_ctl() {
  local r=$1
  shift
  ha_x "$r" timeout 10 "$PCPCTL_BIN" --socket "$LAB_DIR/$r/ctl.sock" "$@"
}

# Original source ports of the TCP/UDP entries in a conntrackd cache (-i or -e), sorted, on
# one line (the first sport= of a line is the original direction's).
ha_ct_sports() {
  ha_ctd "$1" "$2" 2>/dev/null | awk '/^(tcp|udp) / && match($0, /sport=[0-9]+/) { print substr($0, RSTART + 6, RLENGTH - 6) }' |
    sort -n | tr '\n' ' ' | sed 's/ $//'
}

ha_serve() { # ha_serve NS PORTS...: TCP and UDP echo on each port
  local ns=$1
  shift
  lab_spawn "$ns" "$LAB_DIR/serve-$ns.log" python3 "$HA_TOOL" serve --life "$LAB_WATCHDOG" "$@"
}

ha_flow() { # ha_flow ID NS PROTO DST DPORT SPORT
  rm -f "$HA_APP/$1.st" "$HA_APP/$1.stop"
  lab_spawn "$2" "$HA_APP/$1.log" python3 "$HA_TOOL" client --proto "$3" --dst "$4" --dport "$5" --sport "$6" \
    --status "$HA_APP/$1.st" --stopfile "$HA_APP/$1.stop" --duration "$LAB_WATCHDOG" \
    --timeout "${HA_FLOW_TIMEOUT:-12}" --interval "${HA_FLOW_INTERVAL:-0.2}"
}
ha_status() { cat "$HA_APP/$1.st" 2>/dev/null || echo "NO_STATUS"; }
# ha_gap_reset ID...: the flows start their longest gap (maxgap=) afresh with the next echo.
ha_gap_reset() {
  local f
  for f in "$@"; do touch "$HA_APP/$f.st.reset"; done
}
ha_maxgap() { sed -n 's/.* maxgap=\([0-9.]*\).*/\1/p' "$HA_APP/$1.st" 2>/dev/null; }
ha_running() { grep -q '^RUNNING' "$HA_APP/$1.st" 2>/dev/null; }
ha_broken() { grep -q '^BROKEN' "$HA_APP/$1.st" 2>/dev/null; }
ha_allrunning() {
  local f
  for f in "$@"; do ha_running "$f" || return 1; done
}
ha_allbroken() {
  local f
  for f in "$@"; do ha_broken "$f" || return 1; done
}
ha_close() {
  touch "$HA_APP/$1.stop"
  ha_waitfor 5 grep -q '^CLOSED' "$HA_APP/$1.st"
}

# The helper program: echo servers that report the endpoint they see, long-lived clients.
ha_write_tool() {
  cat >"$LAB_DIR/haflow.py" <<'PYEOF'
#!/usr/bin/python3
"""haflow: long-lived test flows for the pcpd HA lab.
serve PORTS: TCP and UDP echo on every port; each reply is "<request> <ip>:<port>\n" with the
  peer endpoint the server sees (so a client notices a changed NAT port).
client: one flow (TCP connection or UDP socket), a message every --interval s; status file:
  RUNNING ok=N ep=IP:PORT maxgap=S | BROKEN ok=N at=S err=... | CLOSED ok=N | DONE ok=N
  BROKEN when no echo for --timeout s, or when the endpoint the server sees changes.
  maxgap = the longest time between two echoes since the start or since STATUS.reset appeared."""
import argparse, os, socket, sys, threading, time

def ep_of(peer):
    a = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
    return "%s:%d" % (a, peer[1])

def serve(a):
    deadline = time.time() + a.life
    def handle(c, peer):
        c.settimeout(1.0); buf = b""
        while time.time() < deadline:
            try: d = c.recv(4096)
            except socket.timeout: continue
            except OSError: break
            if not d: break
            buf += d
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try: c.sendall(line + b" " + ep_of(peer).encode() + b"\n")
                except OSError: return
        c.close()
    def acceptor(s):
        while time.time() < deadline:
            try: c, peer = s.accept()
            except socket.timeout: continue
            except OSError: break
            threading.Thread(target=handle, args=(c, peer), daemon=True).start()
    def udp_echo(u):
        while time.time() < deadline:
            try: d, peer = u.recvfrom(2048)
            except socket.timeout: continue
            except OSError: break
            u.sendto(d + b" " + ep_of(peer).encode(), peer)
    for p in a.ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", p)); s.listen(64); s.settimeout(0.5)
        threading.Thread(target=acceptor, args=(s,), daemon=True).start()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", p)); u.settimeout(0.5)
        threading.Thread(target=udp_echo, args=(u,), daemon=True).start()
    print("serving", *a.ports, flush=True)
    while time.time() < deadline: time.sleep(0.5)

def client(a):
    start = time.time(); deadline = start + a.duration
    def report(m):  # atomic: a reader never sees an empty or half-written status
        with open(a.status + ".tmp", "w") as t: t.write(m + "\n")
        os.replace(a.status + ".tmp", a.status)
        print("%.2f %s" % (time.time() - start, m), flush=True)
    tcp = a.proto == "tcp"
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", a.sport))
    if tcp:
        s.settimeout(5)
        try: s.connect((a.dst, a.dport))
        except OSError as e: report("BROKEN ok=0 at=0 err=connect:%s" % e); return 1
    n = 0; ep = None; last_ok = time.time(); maxgap = 0.0; seq = 0; buf = b""
    while time.time() < deadline and seq < 1000000:
        if os.path.exists(a.stopfile):
            if tcp:
                try:
                    s.shutdown(socket.SHUT_WR); s.settimeout(2); s.recv(100)
                except OSError: pass
            s.close(); report("CLOSED ok=%d ep=%s" % (n, ep)); return 0
        seq += 1; msg = b"%d" % seq; got = None
        try:
            if tcp:
                s.settimeout(max(0.1, a.timeout - (time.time() - last_ok)))
                s.sendall(msg + b"\n")
                while b"\n" not in buf:
                    d = s.recv(4096)
                    if not d: raise OSError("peer closed")
                    buf += d
                line, buf = buf.split(b"\n", 1); got = line.split()
            else:
                s.sendto(msg, (a.dst, a.dport)); t_end = time.time() + 1.0
                while got is None and time.time() < t_end:
                    s.settimeout(max(0.05, t_end - time.time()))
                    try: d = s.recvfrom(2048)[0].split()
                    except socket.timeout: break
                    if len(d) == 2 and d[0] == msg: got = d
        except socket.timeout:
            got = None
        except OSError as e:
            report("BROKEN ok=%d at=%.1f err=%s ep=%s" % (n, time.time() - start, e, ep)); return 1
        now = time.time()
        if os.path.exists(a.status + ".reset"):
            os.remove(a.status + ".reset"); maxgap = 0.0
        if got is not None:
            if len(got) != 2 or got[0] != msg:
                report("BROKEN ok=%d at=%.1f err=bad-echo ep=%s" % (n, now - start, ep)); return 1
            e = got[1].decode()
            if ep is None: ep = e
            if e != ep:
                report("BROKEN ok=%d at=%.1f err=endpoint-changed:%s->%s" % (n, now - start, ep, e)); return 1
            maxgap = max(maxgap, now - last_ok); last_ok = now; n += 1
            report("RUNNING ok=%d ep=%s maxgap=%.2f" % (n, ep, maxgap))
        elif now - last_ok > a.timeout:
            report("BROKEN ok=%d at=%.1f err=no-echo-for-%.0fs ep=%s" % (n, now - start, a.timeout, ep)); return 1
        time.sleep(a.interval)
    s.close(); report("DONE ok=%d ep=%s" % (n, ep)); return 0

p = argparse.ArgumentParser(); sp = p.add_subparsers(dest="cmd", required=True)
x = sp.add_parser("serve"); x.add_argument("--life", type=float, default=200)
x.add_argument("ports", type=int, nargs="+")
x = sp.add_parser("client")
for k, t, d in (("--proto", str, "tcp"), ("--dst", str, None), ("--dport", int, None), ("--sport", int, None),
                ("--interval", float, 0.2), ("--duration", float, 200), ("--timeout", float, 8),
                ("--status", str, None), ("--stopfile", str, None)):
    x.add_argument(k, type=t, default=d)
a = p.parse_args()
sys.exit(serve(a) if a.cmd == "serve" else client(a))
PYEOF
}
