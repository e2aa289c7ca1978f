#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# ckpt_kernel_test.sh: RFC 7767 checkpointing in the kernel (nft-rules/pcpd.nft pre_elect chain,
# NftDatapath election marks, ct_touch). Three namespaces (lan - rtr - wan, veth pairs,
# documentation addresses) with real TCP connections; test_ckpt_kernel runs inside the router
# namespace and drives everything (see ckpt_kernel_test.cpp). Skips (77) without root unless
# CI=true.
set -u
need_root() {
  if [ "${CI:-}" = "true" ]; then echo "FAIL: $1 (CI=true: this test must run)"; exit 1; fi
  echo "SKIP: $1"; exit 77
}
[ "$(id -u)" = 0 ] || need_root "ckpt_kernel_test needs root (network namespaces, netlink)"
for t in nft conntrack ip python3 stdbuf; do command -v $t >/dev/null || need_root "$t not installed"; done
bin="${PCPD_BUILD_DIR:?}/tests/test_ckpt_kernel"
[ -x "$bin" ] || { echo "FAIL: $bin not built (ninja test_ckpt_kernel)"; exit 1; }
src=${PCPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

rnd=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
LAN=pcpd-ckl-$rnd RTR=pcpd-ckr-$rnd WAN=pcpd-ckw-$rnd
tmp=$(mktemp -d)
cleanup() {
  for n in $LAN $RTR $WAN; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

. "$src/tests/integration/three_ns.sh"
three_ns_up "$LAN" "$RTR" "$WAN" 203.0.113.100/24 2001:db8:ff::100/64 || { echo "FAIL: lab setup"; exit 1; }

cat > "$tmp/tool.py" <<'PY'
# server PORT SECONDS: TCP echo on [::]:PORT (IPv4 too), for SECONDS at most.
# client DST PORT SRC SPORT FILE SECONDS: connect from SRC:SPORT, one echo, write "ready" to FILE,
#   then one more echo per SIGUSR1 ("poked N"); idle otherwise; exits after SECONDS.
import signal, socket, sys, threading, time
mode = sys.argv[1]
if mode == "server":
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", int(sys.argv[2]))); s.listen(64); s.settimeout(0.5)
    end = time.time() + float(sys.argv[3])
    def echo(c):
        c.settimeout(max(1.0, end - time.time()))
        try:
            while True:
                d = c.recv(64)
                if not d: break
                c.sendall(d)
        except OSError:
            pass
        c.close()
    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=echo, args=(c,), daemon=True).start()
else:
    dst, port, src, sport, path, secs = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), sys.argv[6], float(sys.argv[7])
    pokes = [0]
    signal.signal(signal.SIGUSR1, lambda *a: pokes.__setitem__(0, pokes[0] + 1))
    def note(text):
        with open(path, "a") as f: f.write(text + "\n")
    s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(3)
    try:
        s.bind((src, sport)); s.connect((dst, port)); s.sendall(b"x")
        if s.recv(8) != b"x": raise OSError("bad echo")
    except OSError as e:
        note("fail %s" % e); sys.exit(1)
    note("ready")
    done, end = 0, time.time() + secs
    while time.time() < end:
        if pokes[0] > done:
            done += 1
            try:
                s.sendall(b"y"); ok = s.recv(8) == b"y"
            except OSError as e:
                ok = False
            note("poked %d %s" % (done, "ok" if ok else "fail"))
        time.sleep(0.02)
PY

echo "ckpt_kernel_test: namespaces $LAN $RTR $WAN"
CKPT_LAN=$LAN CKPT_RTR=$RTR CKPT_WAN=$WAN CKPT_TOOL="$tmp/tool.py" CKPT_TMP="$tmp" \
  timeout 300 "$bin"
rc=$?
# the test kills its own processes by PID; anything left in the namespaces dies with them here
for n in $LAN $WAN $RTR; do
  for p in $(ip netns pids "$n" 2>/dev/null); do kill "$p" 2>/dev/null; done
done
exit $rc
