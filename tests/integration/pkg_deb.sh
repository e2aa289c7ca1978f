#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# pkg_deb.sh: the Debian package, end to end.
#   1. scripts/build-deb.sh builds pcpd_*.deb (dpkg-buildpackage -b) and runs lintian: no errors.
#   2. A fresh Debian 12 root (debootstrap --variant=minbase bookworm) installs the .deb with apt:
#      files in place (dpkg -L), /etc/pcpd/pcpd.conf a conffile, the system user pcpd, the unit
#      not enabled, `systemd-analyze verify` clean, the shipped config valid (--check-config).
#   3. Every man page renders without warnings (man --warnings, groff -ww).
#   4. In the scripts/lab.sh namespace lab, pcpd from that root is started the way the unit
#      starts it: the unit's ExecStartPre (nft -f, as root) then its ExecStart as user pcpd with
#      only CAP_NET_ADMIN (setpriv, ambient + bounding set, no_new_privs, umask 077), with the
#      shipped /etc/pcpd/pcpd.conf unchanged (the lab's interfaces are lan0 and wan0). It must
#      serve a MAP from the packaged pcpc, admit traffic through it, answer the packaged
#      pcpctl (Prometheus output parsed, MAP counted), reload on the unit's ExecReload and stop.
#      Then the unit's restart: SIGTERM, ExecStartPre again (pcpd-nft-load: no nftables
#      transaction when the table is loaded from the same file), start: the mappings come from
#      the restart snapshot/journal, not the set dump. ExecReload (pcpctl reload) fails with
#      file:line on a bad file.
#   5. Under real systemd: the root booted with systemd-nspawn in the router's network
#      namespace. systemctl enable --now pcpd serves a MAP; systemctl restart takes the fast path
#      (pcpd-nft-load loads nothing, the mappings come from the snapshot or journal); kill -9 is
#      restarted by systemd with nothing lost; systemctl reload with a bad file fails and pcpd
#      keeps running; with 50,000 mappings systemctl restart takes the fast path (time to the
#      first answer printed); systemctl restart/reload nftables: pcpd-nft.service loads the table
#      again and pcpd re-installs every mapping (epoch continues); an upgrade to a newer
#      version restarts pcpd on the fast path; a config naming a missing internal interface ends
#      in "failed" (start limit) with pcpd's reason in the status; the HA key handed over with
#      LoadCredential=; apt remove stops the service; apt purge removes the conffile,
#      /var/lib/pcpd and the table inet pcpd.
# Environment: PCPD_DEB=path skips the build and tests that .deb (lintian still runs on it);
# PCPD_DEBIAN_MIRROR (default: the first Debian archive URI of this machine's apt sources).
# PCPD_DEB_CHECK=1 builds the package without nocheck (dh_auto_test runs the unit tests).
set -u
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"
LAB_NO_BINS=1
LAB_WATCHDOG=${LAB_WATCHDOG:-1700}
lab_init pkg_deb

ROOT=""
# The chroot's /proc is mounted: unmount it before anything is deleted, and never follow a
# mount point while deleting (rm --one-file-system).
pkg_cleanup() {
  local rc=$?
  if [ -n "$ROOT" ]; then
    for p in "${LAB_PIDS[@]}"; do lab_ours "$p" && kill -TERM "$p" 2>/dev/null; done
    for p in "${LAB_PIDS[@]}"; do lab_kill "$p" KILL >/dev/null 2>&1; done
    # The container's init (nspawn's child): killing it ends its whole PID namespace.
    [ -n "${CT_INIT:-}" ] && kill -KILL "$CT_INIT" 2>/dev/null
    umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc" 2>/dev/null
    if grep -q " $ROOT/" /proc/mounts; then
      echo "pkg_deb: mounts left under $ROOT, not deleting it"
    elif [ "${KEEP:-}" != 1 ]; then
      rm -rf --one-file-system "$ROOT"
    fi
  fi
  (exit "$rc")
  lab_cleanup
}
trap pkg_cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
for t in debootstrap lintian dpkg-buildpackage; do
  if ! command -v "$t" >/dev/null; then
    lab_log "installing debootstrap, debhelper, lintian (missing $t)"
    apt-get install -y -qq --no-install-recommends debootstrap debhelper lintian dpkg-dev >/dev/null ||
      lab_die "cannot install the packaging tools"
    break
  fi
done
PY=/usr/bin/python3
$PY -c 'import prometheus_client' 2>/dev/null ||
  apt-get install -y -qq --no-install-recommends python3-prometheus-client >/dev/null ||
  lab_die "cannot install python3-prometheus-client"

# 1. Build and lintian.
out=$LAB_DIR/deb
mkdir -p "$out"
if [ -n "${PCPD_DEB:-}" ]; then
  cp "$PCPD_DEB" "$out/" || lab_die "PCPD_DEB=$PCPD_DEB"
  deb=$out/$(basename "$PCPD_DEB")
  lintian --allow-root --pedantic --fail-on error "$deb" >"$out/lintian.txt" 2>&1
  check "pkg: lintian reports no errors on $deb" test $? = 0
else
  t0=$(date +%s)
  # nocheck: the unit tests dh_auto_test would build and run (7 minutes on 2 cores) are the
  # ones this suite ran already; PCPD_DEB_CHECK=1 runs them inside the package build too.
  if [ "${PCPD_DEB_CHECK:-}" = 1 ]; then opts=${DEB_BUILD_OPTIONS:-}; else opts="nocheck ${DEB_BUILD_OPTIONS:-}"; fi
  DEB_BUILD_OPTIONS=$opts "$LAB_SRC/scripts/build-deb.sh" "$out" >"$out/build.txt" 2>&1
  rc=$?
  grep '^build-deb:' "$out/build.txt" | lab_ev
  check "pkg: scripts/build-deb.sh builds the package and lintian --fail-on error passes (exit $rc)" test "$rc" = 0
  lab_log "build-deb.sh took $(($(date +%s) - t0)) s"
  deb=$(ls "$out"/pcpd_*.deb 2>/dev/null | head -n 1)
fi
[ -f "${deb:-}" ] || lab_die "no .deb produced (see above)"
echo "  lintian (tags not overridden):"
grep -E '^[EWIPX]:' "$out/lintian.txt" | lab_ev
grep -qE '^[EWIPX]:' "$out/lintian.txt" || echo "    | (none)"
check_not "pkg: lintian.txt has no E: line" grep -q '^E:' "$out/lintian.txt"
check_not "pkg: lintian.txt has no W: line (overrides carry their reasons)" grep -q '^W:' "$out/lintian.txt"

# 2. A fresh Debian 12 root with the package installed by apt.
ROOT=$(mktemp -d /tmp/pcpd-pkg-root.XXXXXX)
chmod 0755 "$ROOT"  # mktemp makes it 0700: user pcpd must reach / in the chroot
t0=$(date +%s)
# The mirror this machine's apt uses (deb822 .sources or one-line .list), never one named here.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {if ($i !~ /security/) print $i; break}}' "$f"
  done
}
mirror=${PCPD_DEBIAN_MIRROR:-$(apt_mirror | head -n 1)}
[ -n "$mirror" ] || lab_die "no Debian mirror in /etc/apt (set PCPD_DEBIAN_MIRROR)"
lab_log "mirror from apt's configuration: $mirror"
# systemd and dbus too: part 5 boots the root with systemd-nspawn.
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT" "$mirror" \
  >"$LAB_DIR/debootstrap.log" 2>&1 || { tail -n 20 "$LAB_DIR/debootstrap.log" | lab_ev; lab_die "debootstrap"; }
lab_log "debootstrap --variant=minbase bookworm: $(($(date +%s) - t0)) s"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null
mount -t proc proc "$ROOT/proc" || lab_die "mount proc in the root"
cp "$deb" "$ROOT/tmp/pcpd.deb"
inroot() { chroot "$ROOT" "$@"; }
t0=$(date +%s)
inroot sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends /tmp/pcpd.deb' \
  >"$LAB_DIR/apt.log" 2>&1
rc=$?
grep -E "Creating|Setting up pcpd|^E:" "$LAB_DIR/apt.log" | lab_ev
check "pkg: apt-get install ./pcpd.deb in a fresh bookworm root (exit $rc, $(($(date +%s) - t0)) s)" test "$rc" = 0
[ "$rc" = 0 ] || lab_die "the package did not install"

files=(/usr/sbin/pcpd /usr/bin/pcpc /usr/sbin/pcpctl /lib/systemd/system/pcpd.service
  /lib/systemd/system/pcpd-nft.service
  /etc/pcpd/pcpd.conf /usr/share/pcpd/pcpd.nft /usr/share/pcpd/example-router.nft
  /usr/share/pcpd/ha/conntrackd.conf /usr/share/pcpd/ha/keepalived.conf
  /usr/share/pcpd/ha/pcpd-ha-notify /usr/share/pcpd/ha/90-pcpd-conntrack.conf
  /usr/share/pcpd/ha/pcpd-ha-check /usr/share/pcpd/ha/nat-vip.nft /usr/share/pcpd/pcpd-nft-load
  /usr/lib/sysusers.d/pcpd.conf /usr/share/man/man8/pcpd.8.gz /usr/share/man/man5/pcpd.conf.5.gz
  /usr/share/man/man1/pcpc.1.gz /usr/share/man/man8/pcpctl.8.gz /usr/share/doc/pcpd/README.md.gz
  /usr/share/doc/pcpd/capability.md.gz
  /usr/share/doc/pcpd/changelog.gz /usr/share/doc/pcpd/copyright)
inroot dpkg -L pcpd >"$LAB_DIR/dpkg-L.txt"
missing=""
for f in "${files[@]}"; do
  grep -qx "$f" "$LAB_DIR/dpkg-L.txt" && [ -e "$ROOT$f" ] || missing+=" $f"
done
check "pkg: dpkg -L pcpd lists and the root holds all ${#files[@]} files (missing:${missing:- none})" test -z "$missing"
check "pkg: pcpd-ha-notify, pcpd-ha-check and pcpd-nft-load are executable" \
  eval 'test -x "$ROOT/usr/share/pcpd/ha/pcpd-ha-notify" && test -x "$ROOT/usr/share/pcpd/ha/pcpd-ha-check" &&
        test -x "$ROOT/usr/share/pcpd/pcpd-nft-load"'
check "pkg: no sysctl file is activated (/usr/lib/sysctl.d, /etc/sysctl.d)" \
  bash -c "! ls '$ROOT'/usr/lib/sysctl.d/*pcpd* '$ROOT'/etc/sysctl.d/*pcpd* 2>/dev/null | grep -q ."
check "pkg: /etc/pcpd/pcpd.conf is a conffile" \
  bash -c "chroot '$ROOT' dpkg-query -W -f='\${Conffiles}' pcpd | grep -q '^ /etc/pcpd/pcpd.conf '"
check "pkg: the shipped config is the repository's packaging/pcpd.conf" \
  cmp -s "$ROOT/etc/pcpd/pcpd.conf" "$LAB_SRC/packaging/pcpd.conf"
pw=$(inroot getent passwd pcpd)
echo "    getent passwd pcpd: $pw"
uid=$(echo "$pw" | cut -d: -f3)
check "pkg: system user pcpd (uid < 1000, no login shell)" \
  bash -c "[[ '$uid' =~ ^[0-9]+$ ]] && [ '$uid' -lt 1000 ] && [ '$uid' -gt 0 ] && [ '$(echo "$pw" | cut -d: -f7)' = /usr/sbin/nologin ]"
check "pkg: group pcpd exists" inroot getent group pcpd
check_not "pkg: the unit is not enabled on installation" \
  test -e "$ROOT/etc/systemd/system/multi-user.target.wants/pcpd.service"
inroot systemd-analyze verify --man=no /lib/systemd/system/pcpd.service /lib/systemd/system/pcpd-nft.service \
  >"$LAB_DIR/verify.txt" 2>&1
rc=$?
lab_ev <"$LAB_DIR/verify.txt"
check "pkg: systemd-analyze verify pcpd.service pcpd-nft.service in the root: exit 0, no output (exit $rc)" \
  bash -c "[ $rc = 0 ] && [ ! -s '$LAB_DIR/verify.txt' ]"
score=$(inroot systemd-analyze security --offline=true /lib/systemd/system/pcpd.service 2>/dev/null |
  sed -n 's/.*Overall exposure level for pcpd.service: \([0-9.]*\).*/\1/p')
check "pkg: systemd-analyze security exposure $score <= 2.0" \
  bash -c "[ -n '$score' ] && awk 'BEGIN{exit !($score <= 2.0)}'"
check "pkg: pcpd --check-config /etc/pcpd/pcpd.conf (the shipped file) exits 0" \
  inroot pcpd --check-config /etc/pcpd/pcpd.conf
printf '[interfaces]\ninternal = ["lan0"]\nexternal = "wan0"\n[mappings]\nno_such_key = 1\n' >"$ROOT/tmp/bad.conf"
check_not "pkg: pcpd --check-config rejects an unknown key" inroot pcpd --check-config /tmp/bad.conf
check "pkg: pcpd --version from the package" bash -c "chroot '$ROOT' pcpd --version | grep -q '^pcpd '"

# 3. Man pages: the packaged ones and the sources.
for page in "$ROOT"/usr/share/man/man*/pcp*.gz; do
  name=$(basename "$page" .gz)
  warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
  check "man: $name renders without warnings (man --warnings -l)" test -z "$warn"
  [ -z "$warn" ] || echo "$warn" | lab_ev
  warn=$(zcat "$page" | groff -ww -man -z 2>&1)
  check "man: $name groff -ww -man -z is silent" test -z "$warn"
  [ -z "$warn" ] || echo "$warn" | lab_ev
  check "man: packaged $name is man/$name" bash -c "zcat '$page' | cmp -s - '$LAB_SRC/man/$name'"
done

# 4. The packaged pcpd in the lab, started like the unit starts it.
unit=$ROOT/lib/systemd/system/pcpd.service
key() { sed -n "s/^$1=//p" "$unit"; }
pre=$(key ExecStartPre)
start=$(key ExecStart)
reload=$(key ExecReload)
echo "    unit: ExecStartPre=$pre ExecStart=$start ExecReload=$reload User=$(key User)"
check "unit: ExecStartPre runs pcpd-nft-load /usr/share/pcpd/pcpd.nft as root (+)" \
  test "$pre" = "+/usr/share/pcpd/pcpd-nft-load /usr/share/pcpd/pcpd.nft"
check "unit: a start that keeps failing ends in failed (StartLimitBurst=5 within StartLimitIntervalSec=60)" \
  bash -c "[ '$(key StartLimitBurst)' = 5 ] && [ '$(key StartLimitIntervalSec)' = 60 ]"
check "unit: User/Group pcpd, CAP_NET_ADMIN ambient and bounding, Type=notify" bash -c \
  "[ '$(key User)/$(key Group)' = pcpd/pcpd ] && [ '$(key AmbientCapabilities)' = CAP_NET_ADMIN ] &&
   [ '$(key CapabilityBoundingSet)' = CAP_NET_ADMIN ] && [ '$(key Type)' = notify ]"

LAB_NO_PCPD_NFT=1 lab_up
# systemd's StateDirectory=pcpd / RuntimeDirectory=pcpd with their modes, owned by User=.
gid=$(inroot getent group pcpd | cut -d: -f3)
install -d -m "$(key StateDirectoryMode)" -o "$uid" -g "$gid" "$ROOT/var/lib/pcpd"
install -d -m "$(key RuntimeDirectoryMode)" -o "$uid" -g "$gid" "$ROOT/run/pcpd"
check "unit: ExecStartPre (${pre#+}) loads the packaged table in the router" \
  lab_rtr chroot "$ROOT" ${pre#+}
lab_rtr chroot "$ROOT" ${pre#+} >"$LAB_DIR/pre2.txt" 2>&1
check "unit: ExecStartPre again (a restart) loads nothing: the table is there from the same file" \
  grep -q 'nothing to do' "$LAB_DIR/pre2.txt"
# unit_start: ExecStart as the unit runs it (user pcpd, CAP_NET_ADMIN only, its umask).
unit_start() {
  LAB_PCPD_LOG=$LAB_DIR/pcpd.$(date +%s%N).log
  lab_spawn "$LAB_RTR" "$LAB_PCPD_LOG" chroot "$ROOT" /bin/sh -c "umask $(key UMask) && exec setpriv \
    --reuid=pcpd --regid=pcpd --init-groups --no-new-privs \
    --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin \
    -- $start"
  LAB_PCPD_PID=$LAB_LASTPID
  up=0
  for _ in $(seq 1 100); do
    kill -0 "$LAB_PCPD_PID" 2>/dev/null || break
    if lab_rtr ss -Hlun 'sport = :5351' | grep -q .; then up=1; break; fi
    sleep 0.1
  done
  check "unit: pcpd (ExecStart=$start) runs as pcpd and listens on UDP 5351" test "$up" = 1
  [ "$up" = 1 ] || { lab_pcpd_log; lab_die "pcpd did not start"; }
}
# unit_stop: systemctl stop (SIGTERM); the status must be 0.
unit_stop() {
  kill -TERM "$LAB_PCPD_PID"
  ok=0
  for _ in $(seq 1 50); do
    lab_ours "$LAB_PCPD_PID" || { ok=1; break; }
    sleep 0.1
  done
  wait "$LAB_PCPD_PID" 2>/dev/null
  rc=$?
  check "unit: SIGTERM (systemctl stop) ends pcpd with status 0 (status $rc)" bash -c "[ $ok = 1 ] && [ $rc = 0 ]"
  LAB_PCPD_PID=""
}
unit_start
st=/proc/$LAB_PCPD_PID/status
grep -E '^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' "$st" | lab_ev
check "unit: pcpd's uid is pcpd's ($uid)" bash -c "grep -q '^Uid:[[:space:]]*$uid[[:space:]]' $st"
check "unit: effective, permitted, bounding and ambient capabilities are CAP_NET_ADMIN only" \
  bash -c "for c in CapEff CapPrm CapBnd CapAmb; do grep -q \"^\$c:[[:space:]]*0000000000001000\$\" $st || exit 1; done"
check "unit: no_new_privs set" grep -q '^NoNewPrivs:[[:space:]]*1' "$st"

lab_listen "$LAB_CLI" 8080 "$LAB_DIR/l8080.log"
pcpc() { timeout 20 ip netns exec "$LAB_CLI" chroot "$ROOT" pcpc --timeout 6 "$@"; }
pcpc --json -s 192.0.2.1 map -p tcp -i 8080 -l 600 >"$LAB_DIR/map.json" 2>&1
rc=$?
lab_ev <"$LAB_DIR/map.json"
check "R-MAP-9 packaged pcpc map against the packaged pcpd exits 0" test "$rc" = 0
check "R-MAP-9 result SUCCESS" lab_eq result "$(lab_json "$LAB_DIR/map.json" result)" SUCCESS
ext=$(lab_json "$LAB_DIR/map.json" external_port)
[[ "$ext" =~ ^[0-9]+$ ]] || ext=0
check "R-MAP-9 the remote host reaches the client through 203.0.113.1:$ext" lab_connect "$LAB_WAN" 203.0.113.1 "$ext"

pcpctl() { lab_rtr chroot "$ROOT" pcpctl "$@"; }
pcpctl list >"$LAB_DIR/list.txt" 2>&1
lab_ev <"$LAB_DIR/list.txt"
check "pcpctl list (root, packaged) shows the mapping" grep -q "192.0.2.10:8080" "$LAB_DIR/list.txt"
pcpctl stats --format prometheus >"$LAB_DIR/metrics.txt" 2>&1
check "pcpctl stats --format prometheus exits 0" test $? = 0
head -n 6 "$LAB_DIR/metrics.txt" | lab_ev
maps=$($PY - "$LAB_DIR/metrics.txt" <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
assert fams, "no metric families"
for f in fams:
    assert f.type in ("counter", "gauge", "histogram"), (f.name, f.type)
    assert f.documentation, f.name
v = [s.value for f in fams for s in f.samples
     if s.name == "pcpd_requests_total" and s.labels.get("opcode") == "MAP"]
# the latency histogram: cumulative buckets, +Inf equal to _count, and the MAP counted
h = {s.labels.get("le"): s.value for f in fams for s in f.samples
     if s.name == "pcpd_request_duration_seconds_bucket"}
n = [s.value for f in fams for s in f.samples if s.name == "pcpd_request_duration_seconds_count"]
assert h and n and h["+Inf"] == n[0] >= 1, (h, n)
vals = [h[k] for k in sorted(h, key=lambda k: float("inf") if k == "+Inf" else float(k))]
assert vals == sorted(vals), vals
print(int(v[0]) if v else "missing")
EOF
)
check "pcpctl stats: the Prometheus text parses (prometheus_client), counts the MAP, latency histogram well-formed" lab_ge 'pcpd_requests_total{opcode="MAP"}' "$maps" 1
if command -v promtool >/dev/null; then
  check "promtool check metrics accepts the output" bash -c "promtool check metrics <'$LAB_DIR/metrics.txt'"
fi
# With only the unit's privileges pcpd still binds pcpd.nft's NFLOG group (its conntrack thread
# learns the mappings' connections; a failure counts as a loss and every MAP round would walk).
check "unit: the conntrack thread bound the NFLOG group (pcpd_conntrack_learn_lost_total 0)" \
  grep -qx 'pcpd_conntrack_learn_lost_total 0' "$LAB_DIR/metrics.txt"
check_not "the control socket refuses another user (nobody)" \
  lab_rtr chroot "$ROOT" setpriv --reuid=nobody --regid=nogroup --clear-groups pcpctl stats

# ExecReload: pcpctl reload, as the unit's user (its exit status is systemctl reload's).
as_pcpd() { lab_rtr chroot "$ROOT" setpriv --reuid=pcpd --regid=pcpd --init-groups "$@"; }
check "unit: ExecReload ($reload) succeeds" as_pcpd $reload
sleep 0.5
check "unit: pcpd survives the reload" kill -0 "$LAB_PCPD_PID"
check "unit: the reload is logged (config.reloaded)" grep -q 'config.reloaded' "$LAB_PCPD_LOG"
pcpc --json -s 192.0.2.1 map -p udp -i 9000 -l 600 >"$LAB_DIR/map2.json" 2>&1
check "R-MAP-9 a MAP after the reload succeeds" lab_eq result "$(lab_json "$LAB_DIR/map2.json" result)" SUCCESS
check "unit: the epoch file is in StateDirectory (/var/lib/pcpd/epoch), owned by pcpd" \
  bash -c "[ \"\$(stat -c %u '$ROOT/var/lib/pcpd/epoch')\" = '$uid' ]"

cp "$ROOT/etc/pcpd/pcpd.conf" "$LAB_DIR/pcpd.conf.good"
printf '[mappings]\nno_such_key = 1\n' >>"$ROOT/etc/pcpd/pcpd.conf"
as_pcpd $reload >"$LAB_DIR/reload-bad.txt" 2>&1
rc=$?
lab_ev <"$LAB_DIR/reload-bad.txt"
check "unit: ExecReload with a bad file fails (exit 1, systemctl reload fails) naming file:line" \
  bash -c "[ $rc = 1 ] && grep -q '/etc/pcpd/pcpd.conf:[0-9]' '$LAB_DIR/reload-bad.txt'"
cp "$LAB_DIR/pcpd.conf.good" "$ROOT/etc/pcpd/pcpd.conf"
check "unit: pcpd still serves after the refused reload" kill -0 "$LAB_PCPD_PID"

# A restart as the unit does it: stop, ExecStartPre, ExecStart. Nothing changed in nftables, so
# the mappings come back from state_dir (snapshot, journal), not the set dump.
unit_stop
lab_rtr chroot "$ROOT" ${pre#+} >"$LAB_DIR/pre3.txt" 2>&1
lab_ev <"$LAB_DIR/pre3.txt"
unit_start
grep 'mappings\.\|epoch\.' "$LAB_PCPD_LOG" | lab_ev
check "unit: the restart takes the fast path (mappings.recovered from the snapshot or journal, all 2)" \
  grep -Eq 'mappings.recovered source=(snapshot|journal) found=2 restored=2' "$LAB_PCPD_LOG"
check "unit: the restart keeps the epoch (epoch.continued)" grep -q 'epoch.continued' "$LAB_PCPD_LOG"
unit_stop

# 5. Under real systemd: the root booted with systemd-nspawn, sharing the router's network
# namespace (its lan0 and wan0, its nftables and conntrack).
command -v systemd-nspawn >/dev/null || lab_die "systemd-nspawn missing (apt-get install systemd-container)"
umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc"
# On a host still on cgroup v1 (no unified hierarchy), nspawn must be told so.
[ -e /sys/fs/cgroup/cgroup.controllers ] || export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0
# CAP_NET_ADMIN: nspawn keeps it only for a container with its own network; this one shares the
# router's, where pcpd-nft-load and pcpd need it as on the real router.
systemd-nspawn -q -D "$ROOT" --register=no --keep-unit --capability=CAP_NET_ADMIN \
  --network-namespace-path="/run/netns/$LAB_RTR" -b \
  >"$LAB_DIR/nspawn.log" 2>&1 &
NSPAWN_PID=$!
LAB_PIDS+=("$NSPAWN_PID")
# The container's init: nspawn's child running systemd (nspawn forks short-lived helpers first).
CT_INIT=""
find_init() {
  local p
  for p in $(pgrep -P "$NSPAWN_PID"); do
    [ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && { CT_INIT=$p; return 0; }
  done
  return 1
}
# ct CMD...: a command in the container (its mount, PID, IPC and UTS namespaces; the router's net).
ct() { nsenter -t "$CT_INIT" -m -u -i -n -p -r -w "$@"; }
booted() {
  local st
  find_init || return 1
  st=$(ct systemctl is-system-running 2>/dev/null)
  [ "$st" = running ] || [ "$st" = degraded ]
}
ok=0
for _ in $(seq 1 120); do booted && { ok=1; break; }; sleep 0.5; done
check "systemd: the root boots under systemd-nspawn (is-system-running: $(ct systemctl is-system-running 2>&1))" test "$ok" = 1
[ "$ok" = 1 ] || { tail -n 30 "$LAB_DIR/nspawn.log" | lab_ev; lab_die "the container did not boot"; }
journal() { ct journalctl -q -o cat -u pcpd.service --no-pager 2>/dev/null; }
pcpd_runs() { [ "$(ct systemctl is-active pcpd.service 2>/dev/null)" = active ]; }
waitfor() { lab_waitfor "$@"; }

ct systemctl enable --now pcpd.service >"$LAB_DIR/enable.txt" 2>&1
check "systemd: systemctl enable --now pcpd (the shipped config, lan0/wan0): active" waitfor 10 pcpd_runs
ct systemctl status --no-pager pcpd.service 2>&1 | head -n 12 | lab_ev
pcpd_runs || journal | tail -n 20 | lab_ev
lab_listen "$LAB_CLI" 8082 "$LAB_DIR/l8082.log"
pcpc --json -s 192.0.2.1 map -p tcp -i 8082 -l 600 >"$LAB_DIR/map3.json" 2>&1
check "systemd: a MAP against the pcpd systemd started: SUCCESS" lab_eq result "$(lab_json "$LAB_DIR/map3.json" result)" SUCCESS
ext3=$(lab_json "$LAB_DIR/map3.json" external_port)
check "systemd: the remote host reaches the client through it" lab_connect "$LAB_WAN" 203.0.113.1 "${ext3:-0}"

mark=$(journal | wc -l)
ct systemctl restart pcpd.service
check "systemd: systemctl restart pcpd: active again" waitfor 10 pcpd_runs
journal | tail -n +"$((mark + 1))" >"$LAB_DIR/restart.journal"
grep -E 'pcpd-nft-load|mappings\.|epoch\.' "$LAB_DIR/restart.journal" | lab_ev
check "systemd: the restart's ExecStartPre loads nothing (the table is there from the same file)" \
  grep -q 'pcpd-nft-load: .*nothing to do' "$LAB_DIR/restart.journal"
check "systemd: the restart takes the fast path (mappings from the snapshot or journal, no set dump)" \
  grep -Eq 'mappings.recovered source=(snapshot|journal)' "$LAB_DIR/restart.journal"
check "systemd: the restart keeps the epoch" grep -q 'epoch.continued' "$LAB_DIR/restart.journal"

# kill -9: Restart=on-failure starts it again after RestartSec (5 s), and nothing is lost (the
# journal of the last commits on top of the snapshot).
pid0=$(ct systemctl show -p MainPID --value pcpd.service)
mark=$(journal | wc -l)
ct systemctl kill --signal=KILL --kill-who=main pcpd.service
restarted() {
  local p
  p=$(ct systemctl show -p MainPID --value pcpd.service)
  pcpd_runs && [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$pid0" ]
}
check "systemd: kill -9 of pcpd (MainPID $pid0): systemd starts it again within 20 s" waitfor 20 restarted
journal | tail -n +"$((mark + 1))" >"$LAB_DIR/kill.journal"
grep -E 'mappings\.|epoch\.' "$LAB_DIR/kill.journal" | lab_ev
check "systemd: ... the mappings come back from the snapshot and journal (no set dump)" \
  grep -Eq 'mappings.recovered source=(snapshot|journal)' "$LAB_DIR/kill.journal"
check_not "systemd: ... none lost (no mappings.lost)" grep -q 'mappings.lost' "$LAB_DIR/kill.journal"
check "systemd: ... the epoch continues" grep -q 'epoch.continued' "$LAB_DIR/kill.journal"
check "systemd: ... the remote host still reaches the client through the MAP" \
  lab_connect "$LAB_WAN" 203.0.113.1 "${ext3:-0}"

cp "$ROOT/etc/pcpd/pcpd.conf" "$LAB_DIR/pcpd.conf.good"
printf '[mappings]\nno_such_key = 1\n' >>"$ROOT/etc/pcpd/pcpd.conf"
ct systemctl reload pcpd.service >"$LAB_DIR/sd-reload.txt" 2>&1
rc=$?
lab_ev <"$LAB_DIR/sd-reload.txt"
journal | grep -E 'reload' | tail -n 3 | lab_ev
check "systemd: systemctl reload with a bad file fails (exit $rc)" test "$rc" != 0
check "systemd: ... the unit's journal names the file:line" eval 'journal | grep -q "/etc/pcpd/pcpd.conf:[0-9]"'
check "systemd: ... and pcpd keeps running the old configuration" pcpd_runs
cp "$LAB_DIR/pcpd.conf.good" "$ROOT/etc/pcpd/pcpd.conf"

# A port forward the operator adds to the packaged config ([[static]]), applied by `systemctl
# reload`, kept by a restart (the element has no timeout) and removed by editing it out again.
lab_listen "$LAB_CLI" 8090 "$LAB_DIR/l8090.log"
printf '\n[[static]]\nprotocol = "tcp"\ninternal = "192.0.2.10:8090"\nexternal_port = 2290\ndescription = "nas"\n' \
  >>"$ROOT/etc/pcpd/pcpd.conf"
check "systemd: pcpd --check-config accepts the [[static]] entry" ct pcpd --check-config /etc/pcpd/pcpd.conf
check "systemd: systemctl reload with a [[static]] entry succeeds" ct systemctl reload pcpd.service
static_line() { lab_rtr nft list map inet pcpd map4_dnat | grep -E '203\.0\.113\.1 \. tcp \. 2290 '; }
static_in() { static_line | grep -q 'comment "static map' && ! static_line | grep -Eq 'timeout|expires'; }
check "systemd: ... the kernel holds 203.0.113.1 . tcp . 2290 without a timeout, commented 'static map'" \
  waitfor 5 static_in
check "systemd: ... the remote host reaches the client through 203.0.113.1:2290" \
  lab_connect "$LAB_WAN" 203.0.113.1 2290
ct systemctl restart pcpd.service
check "systemd: after systemctl restart the static mapping is there once, without a timeout" \
  eval 'waitfor 10 pcpd_runs && static_in && [ "$(static_line | wc -l)" = 1 ]'
check "systemd: ... and still reaches the client" lab_connect "$LAB_WAN" 203.0.113.1 2290
check "systemd: pcpctl list shows it as permanent" eval 'ct pcpctl list 2>&1 | grep "192.0.2.10:8090" | grep -q permanent'
cp "$LAB_DIR/pcpd.conf.good" "$ROOT/etc/pcpd/pcpd.conf"
# The listing must work for "gone" to mean anything.
static_gone() { local t; t=$(lab_rtr nft list map inet pcpd map4_dnat) && ! grep -Eq '203\.0\.113\.1 \. tcp \. 2290 ' <<<"$t"; }
check "systemd: the entry edited out, systemctl reload removes it" \
  eval 'ct systemctl reload pcpd.service && waitfor 5 static_gone'


# 50,000 mappings, then `systemctl restart pcpd`: the fast path (snapshot, no set dump) and the
# time until a client is answered again. The operator raises the per-client quota and lifts the
# request rate limits for the one load-generating client address (a reload, no restart).
LOADGEN=${PCPD_BUILD_DIR:-$LAB_SRC/build}/bench/pcpd-loadgen
[ -x "$LOADGEN" ] || lab_die "pcpd-loadgen not found at $LOADGEN (built with the project)"
sed -i -e 's/^max_per_client = 256$/max_per_client = 65535/' -e 's/^client_rate = 100$/client_rate = 0/' \
  -e 's/^global_rate = 10000$/global_rate = 0/' "$ROOT/etc/pcpd/pcpd.conf"
check "systemd: systemctl reload with the raised quota succeeds" ct systemctl reload pcpd.service
cp "$ROOT/etc/pcpd/pcpd.conf" "$LAB_DIR/pcpd.conf.good"
t0=$(date +%s.%N)
ip netns exec "$LAB_CLI" "$LOADGEN" fill --server 192.0.2.1 --client 192.0.2.10 --count 50000 \
  --base-port 10000 --window 64 --lifetime 3600 --protocol tcp --seed 21 --timeout-ms 10000 \
  --max-seconds 300 >"$LAB_DIR/fill.json" 2>"$LAB_DIR/fill.err"
filled=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["success"])' \
  "$LAB_DIR/fill.json" 2>/dev/null)
echo "    50,000 MAP requests in $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}') s: ${filled:-?} mappings"
check "systemd: 50,000 MAP requests from one client make 50,000 mappings" lab_eq mappings "${filled:-0}" 50000
total=$(ct pcpctl stats --format prometheus 2>/dev/null | awk '/^pcpd_mappings\{/ {s += $2} END {printf "%d", s}')
echo "    pcpd holds ${total:-?} mappings"
recovered_all() { # recovered_all JOURNAL: mappings.recovered from the snapshot/journal, >= $total >= 50,000
  python3 - "$1" "${total:-0}" <<'PY'
import re, sys
text, want = open(sys.argv[1]).read(), int(sys.argv[2])
m = re.search(r"mappings.recovered source=(snapshot|journal) found=(\d+)", text)
sys.exit(0 if m and int(m.group(2)) >= want >= 50000 else 1)
PY
}

mark=$(journal | wc -l)
t0=$(date +%s.%N)
ct systemctl restart pcpd.service
t1=$(date +%s.%N)
pcpc --json -s 192.0.2.1 announce >"$LAB_DIR/ann-after.json" 2>&1
t2=$(date +%s.%N)
journal | tail -n +"$((mark + 1))" >"$LAB_DIR/restart50k.journal"
grep -E 'pcpd-nft-load|mappings\.|epoch\.|snapshot' "$LAB_DIR/restart50k.journal" | lab_ev
restart_s=$(echo "$t1 $t0" | awk '{printf "%.2f", $1 - $2}')
answer_s=$(echo "$t2 $t0" | awk '{printf "%.2f", $1 - $2}')
echo "    systemctl restart returned after $restart_s s (READY=1); first answer $answer_s s after the restart began"
check "systemd: with ${total:-?} mappings, systemctl restart takes the fast path (snapshot, all of them)" \
  recovered_all "$LAB_DIR/restart50k.journal"
check "systemd: ... the epoch continues" grep -q 'epoch.continued' "$LAB_DIR/restart50k.journal"
check "systemd: ... a client is answered within 10 s of the restart ($answer_s s)" python3 -c '
import json, sys
ok = json.load(open(sys.argv[1]))["result"] == "SUCCESS"
sys.exit(0 if ok and float(sys.argv[2]) < 10 else 1)' "$LAB_DIR/ann-after.json" "$answer_s"

# nftables.service restarted: its /etc/nftables.conf flushes the whole ruleset, table inet pcpd
# with it. pcpd-nft.service (PartOf=nftables.service) loads it again and pcpd re-installs every
# mapping in one transaction: the same ports, the epoch continues, no client has to act.
mark=$(journal | wc -l)
resynced() { journal | tail -n +"$((mark + 1))" | grep -q 'datapath.resynced'; }
ct systemctl restart nftables.service
check "systemd: systemctl restart nftables: pcpd re-installs its mappings within 15 s (datapath.resynced)" \
  waitfor 15 resynced
journal | tail -n +"$((mark + 1))" >"$LAB_DIR/nftables.journal"
grep -E 'datapath|epoch\.|mappings\.' "$LAB_DIR/nftables.journal" | lab_ev
check "systemd: ... all of them (mappings = in_core)" \
  grep -Eq 'datapath.resynced mappings=([0-9]+) in_core=\1( |$)' "$LAB_DIR/nftables.journal"
check_not "systemd: ... without an epoch reset (nothing was lost)" grep -q 'epoch.reset' "$LAB_DIR/nftables.journal"
check "systemd: ... the remote host reaches the client through the MAP again" \
  lab_connect "$LAB_WAN" 203.0.113.1 "${ext3:-0}"
mark=$(journal | wc -l)
ct systemctl reload nftables.service
check "systemd: systemctl reload nftables: the same (datapath.resynced)" waitfor 15 resynced
check "systemd: ... the remote host reaches the client through the MAP" lab_connect "$LAB_WAN" 203.0.113.1 "${ext3:-0}"

# An upgrade: the same package with a higher version (dpkg-deb -R, Version bumped, dpkg-deb -b),
# installed with apt. debhelper's postinst try-restarts the running unit; pcpd.nft is unchanged,
# so the restart takes the fast path and keeps mappings and epoch.
up=$LAB_DIR/upgrade
dpkg-deb -R "$deb" "$up" && sed -i 's/^Version: \(.*\)$/Version: \1+lab1/' "$up/DEBIAN/control" &&
  dpkg-deb -b "$up" "$ROOT/root/pcpd-upgrade.deb" >/dev/null || lab_die "cannot repack the .deb"
pid0=$(ct systemctl show -p MainPID --value pcpd.service)
mark=$(journal | wc -l)
# In /root: the container's /tmp is a tmpfs of its own (systemd-nspawn).
ct apt-get install -y -qq --no-install-recommends /root/pcpd-upgrade.deb >"$LAB_DIR/upgrade.log" 2>&1
rc=$?
[ "$rc" = 0 ] || tail -n 20 "$LAB_DIR/upgrade.log" | lab_ev
check "systemd: apt-get install of a newer pcpd (upgrade) exits 0 (exit $rc)" test "$rc" = 0
check "systemd: ... dpkg has the new version" eval 'ct dpkg-query -W -f="\${Version}" pcpd | grep -q "+lab1$"'
check "systemd: ... the running pcpd was restarted by the upgrade" waitfor 20 restarted
journal | tail -n +"$((mark + 1))" >"$LAB_DIR/upgrade.journal"
grep -E 'pcpd-nft-load|mappings\.|epoch\.' "$LAB_DIR/upgrade.journal" | lab_ev
check "systemd: ... from the snapshot, all of them" recovered_all "$LAB_DIR/upgrade.journal"
check "systemd: ... the epoch continues" grep -q 'epoch.continued' "$LAB_DIR/upgrade.journal"
check "systemd: ... the remote host reaches the client through the MAP" lab_connect "$LAB_WAN" 203.0.113.1 "${ext3:-0}"


# A start that cannot succeed: the internal interface does not exist (the shipped config before
# lan0 exists). Restart=on-failure retries every 5 s; StartLimitBurst ends it in "failed".
ct systemctl stop pcpd.service
sed -i 's/^internal = \["lan0"\]/internal = ["nosuch0"]/' "$ROOT/etc/pcpd/pcpd.conf"
grep -q 'nosuch0' "$ROOT/etc/pcpd/pcpd.conf" || lab_die "could not break the config"
mark=$(ct journalctl -q -o cat --no-pager 2>/dev/null | wc -l)
ct systemctl start pcpd.service >/dev/null 2>&1
is_failed() { [ "$(ct systemctl is-failed pcpd.service 2>/dev/null)" = failed ]; }
check "systemd: a start that keeps failing ends in failed within 60 s" waitfor 60 is_failed
ct systemctl status --no-pager pcpd.service >"$LAB_DIR/failed.status" 2>&1
head -n 12 "$LAB_DIR/failed.status" | lab_ev
echo "    $(ct systemctl show -p NRestarts -p Result pcpd.service | tr '\n' ' ')"
check "systemd: ... by the start limit (\"Start request repeated too quickly\")" \
  eval 'ct journalctl -q -o cat --no-pager | tail -n +"$((mark + 1))" | grep -q "Start request repeated too quickly"'
check "systemd: systemctl status shows pcpd's reason (Status: ... nosuch0)" grep -q 'Status:.*nosuch0' "$LAB_DIR/failed.status"
cp "$LAB_DIR/pcpd.conf.good" "$ROOT/etc/pcpd/pcpd.conf"
ct systemctl reset-failed pcpd.service
ct systemctl start pcpd.service
check "systemd: fixed and reset-failed, it starts again" waitfor 10 pcpd_runs

# The HA key as a systemd credential, the documented way to hand user pcpd a key only root can
# read: LoadCredential= in a drop-in, key_file in $CREDENTIALS_DIRECTORY. The peer is a lab
# address nobody answers; pcpd starts, takes the key and runs its side of the link.
(umask 077 && head -c 32 /dev/urandom | base64 >"$ROOT/etc/pcpd/ha.key")
mkdir -p "$ROOT/etc/systemd/system/pcpd.service.d"
printf '[Service]\nLoadCredential=ha.key:/etc/pcpd/ha.key\n' >"$ROOT/etc/systemd/system/pcpd.service.d/ha-key.conf"
printf '\n[ha]\npeer = "198.51.100.2"\nkey_file = "/run/credentials/pcpd.service/ha.key"\n' >>"$ROOT/etc/pcpd/pcpd.conf"
ct systemctl daemon-reload
mark=$(journal | wc -l)
ct systemctl restart pcpd.service
check "systemd: [ha] with key_file from LoadCredential= (key root:root 0600): pcpd starts" waitfor 10 pcpd_runs
journal | tail -n +"$((mark + 1))" >"$LAB_DIR/ha-key.journal"
grep -E '^ha\.' "$LAB_DIR/ha-key.journal" | lab_ev
check "systemd: ... and runs the peer link with that key (ha.start, no ha.setup_failed)" \
  bash -c "grep -q '^ha.start' '$LAB_DIR/ha-key.journal' && ! grep -q 'ha.setup_failed' '$LAB_DIR/ha-key.journal'"

ct apt-get remove -y -qq pcpd >"$LAB_DIR/remove.log" 2>&1
check "systemd: apt-get remove pcpd exits 0" test $? = 0
check_not "systemd: apt remove stopped the service (no pcpd process left)" ct pgrep -x pcpd
check "systemd: remove keeps /var/lib/pcpd and the conffile" \
  bash -c "[ -d '$ROOT/var/lib/pcpd' ] && [ -e '$ROOT/etc/pcpd/pcpd.conf' ]"
ct apt-get purge -y -qq pcpd >"$LAB_DIR/purge.log" 2>&1
check "pkg: apt-get purge pcpd exits 0" test $? = 0
check_not "pkg: purge removed /etc/pcpd/pcpd.conf" test -e "$ROOT/etc/pcpd/pcpd.conf"
check_not "pkg: purge removed /var/lib/pcpd (a later install starts a new epoch)" test -e "$ROOT/var/lib/pcpd"
check_not "pkg: purge deleted table inet pcpd and its mappings" lab_rtr nft list table inet pcpd

ct systemctl poweroff >/dev/null 2>&1
for _ in $(seq 1 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.2; done
wait "$NSPAWN_PID" 2>/dev/null
lab_finish
