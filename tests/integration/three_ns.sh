# SPDX-License-Identifier: GPL-2.0-or-later
# three_ns.sh: the three-namespace topology of the kernel tests that run without pcpd
# (nft_traffic_test.sh, ckpt_kernel_test.sh), sourced by them. scripts/lab.sh builds a lab for
# pcpd (its rulesets, pcpd's start and stop); these tests load only what they test.
#
#   LAN 192.0.2.10, 2001:db8:1::10 (veth-l) -- lan0 192.0.2.1, 2001:db8:1::1  RTR
#   RTR wan0 203.0.113.1, 2001:db8:ff::1 -- veth-w WAN_ADDRESSES (documentation addresses)  WAN
# The LAN host routes by the router; WAN has a route back to 2001:db8:1::/64 only, so that IPv4
# from the WAN reaches the LAN only translated.

# three_ns_up LAN RTR WAN WAN_ADDRESS/PREFIX...: creates the namespaces (the caller deletes them).
three_ns_up() {
  local lan=$1 rtr=$2 wan=$3 n a
  shift 3
  for n in "$lan" "$rtr" "$wan"; do ip netns add "$n" && ip -n "$n" link set lo up || return 1; done
  ip link add veth-l type veth peer name lan0 netns "$rtr" || return 1
  ip link set veth-l netns "$lan"
  ip link add veth-w type veth peer name wan0 netns "$rtr" || return 1
  ip link set veth-w netns "$wan"
  ip -n "$lan" addr add 192.0.2.10/24 dev veth-l
  ip -n "$lan" addr add 2001:db8:1::10/64 dev veth-l nodad
  ip -n "$lan" link set veth-l up
  ip -n "$lan" route add default via 192.0.2.1
  ip -n "$lan" -6 route add default via 2001:db8:1::1
  ip -n "$rtr" addr add 192.0.2.1/24 dev lan0
  ip -n "$rtr" addr add 2001:db8:1::1/64 dev lan0 nodad
  ip -n "$rtr" addr add 203.0.113.1/24 dev wan0
  ip -n "$rtr" addr add 2001:db8:ff::1/64 dev wan0 nodad
  ip -n "$rtr" link set lan0 up
  ip -n "$rtr" link set wan0 up
  ip netns exec "$rtr" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  for a in "$@"; do
    case $a in
      *:*) ip -n "$wan" addr add "$a" dev veth-w nodad ;;
      *) ip -n "$wan" addr add "$a" dev veth-w ;;
    esac
  done
  ip -n "$wan" link set veth-w up
  ip -n "$wan" -6 route add 2001:db8:1::/64 via 2001:db8:ff::1
}
