// SPDX-License-Identifier: GPL-2.0-or-later
#include "conntrack/ct_netlink.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace pcpd::ct {
namespace {

constexpr std::size_t kSendChunk = 32 * 1024;  // writes per sendmsg: ~300 messages

// An nfnetlink request header: subsystem (ctnetlink, or nfnetlink_log for its config) and type,
// then the nfgenmsg with the family and, for nfnetlink_log, the group in res_id.
nlmsghdr* put_request(char* buf, std::uint16_t type, std::uint16_t flags, std::uint32_t seq, std::uint8_t family,
                      std::uint8_t subsystem = NFNL_SUBSYS_CTNETLINK, std::uint16_t res_id = 0) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = static_cast<std::uint16_t>((subsystem << 8) | type);
  nlh->nlmsg_flags = flags;
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(res_id);
  return nlh;
}

void put_addr(nlmsghdr* nlh, std::uint16_t v4_type, std::uint16_t v6_type, std::uint8_t family, const wire::IpAddr& a) {
  if (family == AF_INET)
    mnl_attr_put_u32(nlh, v4_type, htonl(a.v4()));
  else
    mnl_attr_put(nlh, v6_type, 16, a.bytes.data());
}

// CTA_TUPLE_ORIG of `e` (conntrack -p P -s S -d D --sport .. --dport ..), and its zone.
void put_orig(nlmsghdr* nlh, const CtEntry& e) {
  auto* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
  auto* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  put_addr(nlh, CTA_IP_V4_SRC, CTA_IP_V6_SRC, e.family, e.orig.src);
  put_addr(nlh, CTA_IP_V4_DST, CTA_IP_V6_DST, e.family, e.orig.dst);
  mnl_attr_nest_end(nlh, ip);
  auto* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, e.protocol);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(e.orig.src_port));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(e.orig.dst_port));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
  if (e.zone != 0) mnl_attr_put_u16(nlh, CTA_ZONE, htons(e.zone));
}

// The attributes of one nest level, indexed by type (unknown or too-high types are skipped).
template <std::size_t N>
struct Attrs {
  const nlattr* at[N + 1] = {};
  static int collect(const nlattr* a, void* data) {
    auto* self = static_cast<Attrs*>(data);
    const auto type = mnl_attr_get_type(a);
    if (type <= N) self->at[type] = a;
    return MNL_CB_OK;
  }
};

wire::IpAddr addr_of(const nlattr* a, bool v4) {
  if (a == nullptr) return {};
  if (v4) return mnl_attr_get_payload_len(a) >= 4 ? wire::IpAddr::from_v4(ntohl(mnl_attr_get_u32(a))) : wire::IpAddr{};
  wire::IpAddr r;
  if (mnl_attr_get_payload_len(a) >= 16) std::memcpy(r.bytes.data(), mnl_attr_get_payload(a), 16);
  return r;
}

bool parse_tuple(const nlattr* nest, bool v4, std::uint8_t& protocol, FlowTuple& t) {
  if (nest == nullptr) return false;
  Attrs<CTA_TUPLE_MAX> tuple;
  if (mnl_attr_parse_nested(nest, Attrs<CTA_TUPLE_MAX>::collect, &tuple) < 0) return false;
  if (tuple.at[CTA_TUPLE_IP] != nullptr) {
    Attrs<CTA_IP_MAX> ip;
    if (mnl_attr_parse_nested(tuple.at[CTA_TUPLE_IP], Attrs<CTA_IP_MAX>::collect, &ip) < 0) return false;
    t.src = addr_of(ip.at[v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC], v4);
    t.dst = addr_of(ip.at[v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST], v4);
  }
  if (tuple.at[CTA_TUPLE_PROTO] != nullptr) {
    Attrs<CTA_PROTO_MAX> p;
    if (mnl_attr_parse_nested(tuple.at[CTA_TUPLE_PROTO], Attrs<CTA_PROTO_MAX>::collect, &p) < 0) return false;
    if (p.at[CTA_PROTO_NUM] != nullptr) protocol = mnl_attr_get_u8(p.at[CTA_PROTO_NUM]);
    if (p.at[CTA_PROTO_SRC_PORT] != nullptr) t.src_port = ntohs(mnl_attr_get_u16(p.at[CTA_PROTO_SRC_PORT]));
    if (p.at[CTA_PROTO_DST_PORT] != nullptr) t.dst_port = ntohs(mnl_attr_get_u16(p.at[CTA_PROTO_DST_PORT]));
  }
  return true;
}

// One IPCTNL_MSG_CT_NEW message of a dump or a get: false for families pcpd does not handle.
bool parse_entry(const nlmsghdr* nlh, CtEntry& e) {
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  if (nfg->nfgen_family != AF_INET && nfg->nfgen_family != AF_INET6) return false;
  e = CtEntry{};
  e.family = nfg->nfgen_family;
  Attrs<CTA_MAX> top;
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), Attrs<CTA_MAX>::collect, &top) < 0) return false;
  const bool v4 = e.family == AF_INET;
  std::uint8_t reply_protocol = 0;
  if (!parse_tuple(top.at[CTA_TUPLE_ORIG], v4, e.protocol, e.orig)) return false;
  parse_tuple(top.at[CTA_TUPLE_REPLY], v4, reply_protocol, e.reply);
  if (top.at[CTA_MARK] != nullptr) e.mark = ntohl(mnl_attr_get_u32(top.at[CTA_MARK]));
  if (top.at[CTA_ZONE] != nullptr) e.zone = ntohs(mnl_attr_get_u16(top.at[CTA_ZONE]));
  return true;
}

// The caller's function for each entry of a dump or announcement, and how many it got.
struct EachCtx {
  const std::function<void(const CtEntry&)>* each;
  std::size_t count = 0;
};

int on_dumped(const nlmsghdr* nlh, void* data) {
  auto* ctx = static_cast<EachCtx*>(data);
  CtEntry e;
  if (parse_entry(nlh, e)) {
    ++ctx->count;
    (*ctx->each)(e);
  }
  return MNL_CB_OK;
}

}  // namespace

Result<std::unique_ptr<NetlinkCtKernel>> NetlinkCtKernel::open() {
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (nl == nullptr) return fail(ErrorDomain::Conntrack, errno, "conntrack: open");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int e = errno;
    mnl_socket_close(nl);
    return fail(ErrorDomain::Conntrack, e, "conntrack: bind");
  }
  // The acks of a whole chunk of writes must fit.
  int rcvbuf = 1 << 21;
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  return std::unique_ptr<NetlinkCtKernel>(new NetlinkCtKernel(nl));
}

NetlinkCtKernel::NetlinkCtKernel(mnl_socket* nl)
    : nl_(nl), portid_(mnl_socket_get_portid(nl)), seq_(static_cast<std::uint32_t>(time(nullptr))),
      rx_(64 * 1024), tx_(kSendChunk + MNL_SOCKET_BUFFER_SIZE) {}

NetlinkCtKernel::~NetlinkCtKernel() {
  if (log_ != nullptr) mnl_socket_close(log_);
  mnl_socket_close(nl_);
}

Result<std::size_t> NetlinkCtKernel::walk(std::uint32_t mask, std::uint32_t value,
                                          const std::function<void(const CtEntry&)>& each) {
  // conntrack -L --mark value/mask (both families): the kernel skips every other entry
  // (ctnetlink_filter_match), so only these are encoded and parsed.
  nlmsghdr* nlh = put_request(tx_.data(), IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, ++seq_, AF_UNSPEC);
  mnl_attr_put_u32(nlh, CTA_MARK, htonl(value));
  mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask));
  EachCtx ctx{&each};
  if (auto r = request(nlh, on_dumped, &ctx, "conntrack: dump"); !r) return tl::unexpected(r.error());
  return ctx.count;
}

Result<void> NetlinkCtKernel::request(const nlmsghdr* nlh, mnl_cb_t cb, void* data, const char* what) {
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return fail(ErrorDomain::Conntrack, errno, what);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
    if (n < 0) return fail(ErrorDomain::Conntrack, errno, what);
    const int r = mnl_cb_run(rx_.data(), static_cast<std::size_t>(n), nlh->nlmsg_seq, portid_, cb, data);
    if (r < 0) return fail(ErrorDomain::Conntrack, errno, what);
    if (r == MNL_CB_STOP) return {};
  }
}

Result<std::optional<CtEntry>> NetlinkCtKernel::get(const CtEntry& key) {
  // conntrack -G -p P -s S -d D --sport .. --dport ..: one hash lookup in the kernel.
  nlmsghdr* nlh = put_request(tx_.data(), IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_ACK, ++seq_, key.family);
  put_orig(nlh, key);
  std::optional<CtEntry> found;
  auto cb = [](const nlmsghdr* m, void* data) -> int {
    CtEntry e;
    if (parse_entry(m, e)) *static_cast<std::optional<CtEntry>*>(data) = e;
    return MNL_CB_OK;
  };
  if (auto r = request(nlh, cb, &found, "conntrack: get"); !r) {
    if (r.error().code == ENOENT) return std::optional<CtEntry>{};
    return tl::unexpected(r.error());
  }
  return found;
}

CtWriteResult NetlinkCtKernel::write(std::span<const CtWrite> writes) {
  CtWriteResult result;
  std::size_t i = 0;
  while (i < writes.size()) {
    // One chunk: conntrack -U ... --mark SET/MASK or conntrack -D ..., each acked.
    std::size_t used = 0;
    const std::uint32_t first_seq = seq_ + 1;
    std::size_t sent = 0;
    while (i < writes.size() && used + 512 <= kSendChunk) {
      const CtWrite& w = writes[i++];
      nlmsghdr* nlh = put_request(tx_.data() + used, w.remove ? IPCTNL_MSG_CT_DELETE : IPCTNL_MSG_CT_NEW,
                                  NLM_F_REQUEST | NLM_F_ACK, ++seq_, w.entry.family);
      put_orig(nlh, w.entry);
      if (!w.remove) {
        // The kernel computes (mark & ~MARK_MASK) ^ MARK (ctnetlink_change_mark).
        mnl_attr_put_u32(nlh, CTA_MARK, htonl(w.set));
        mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(w.set | w.clear));
      }
      used += nlh->nlmsg_len;
      ++sent;
    }
    if (mnl_socket_sendto(nl_, tx_.data(), used) < 0) {
      if (result.first_errno == 0) result.first_errno = errno;
      result.failed += sent;
      continue;
    }
    std::size_t answered = 0;
    while (answered < sent) {
      const ssize_t n = mnl_socket_recvfrom(nl_, rx_.data(), rx_.size());
      if (n < 0) {
        if (result.first_errno == 0) result.first_errno = errno;
        result.failed += sent - answered;
        break;
      }
      int left = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(rx_.data()); mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
        if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < first_seq || h->nlmsg_seq > seq_) continue;
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
        ++answered;
        if (err->error == 0) {
          ++result.done;
        } else if (err->error == -ENOENT) {
          ++result.gone;
        } else {
          ++result.failed;
          if (result.first_errno == 0) result.first_errno = -err->error;
        }
      }
    }
  }
  return result;
}

namespace {

// The original tuple of a logged packet (it was logged in its original direction, before any
// NAT): IPv4 or IPv6 header, then the ports of TCP, UDP, UDP-Lite, SCTP or DCCP. False for
// anything else (a later fragment, an extension header, a truncated copy).
bool tuple_of_packet(std::uint8_t family, const std::uint8_t* p, std::size_t n, CtEntry& e) {
  std::size_t l4 = 0;
  if (family == AF_INET) {
    if (n < 20 || (p[0] >> 4) != 4) return false;
    l4 = std::size_t{p[0] & 0x0fu} * 4;
    if ((((p[6] & 0x1f) << 8) | p[7]) != 0) return false;  // not the first fragment
    e.protocol = p[9];
    std::uint32_t a, b;
    std::memcpy(&a, p + 12, 4);
    std::memcpy(&b, p + 16, 4);
    e.orig.src = wire::IpAddr::from_v4(ntohl(a));
    e.orig.dst = wire::IpAddr::from_v4(ntohl(b));
  } else if (family == AF_INET6) {
    if (n < 40 || (p[0] >> 4) != 6) return false;
    l4 = 40;
    e.protocol = p[6];
    std::memcpy(e.orig.src.bytes.data(), p + 8, 16);
    std::memcpy(e.orig.dst.bytes.data(), p + 24, 16);
  } else {
    return false;
  }
  switch (e.protocol) {
    case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_UDPLITE: case IPPROTO_SCTP: case IPPROTO_DCCP: break;
    default: return false;
  }
  if (n < l4 + 4) return false;
  e.family = family;
  e.orig.src_port = static_cast<std::uint16_t>((p[l4] << 8) | p[l4 + 1]);
  e.orig.dst_port = static_cast<std::uint16_t>((p[l4 + 2] << 8) | p[l4 + 3]);
  return true;
}

int on_logged(const nlmsghdr* nlh, void* data) {
  auto* ctx = static_cast<EachCtx*>(data);
  if ((nlh->nlmsg_type & 0xff) != NFULNL_MSG_PACKET) return MNL_CB_OK;
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  Attrs<NFULA_MAX> a;
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), Attrs<NFULA_MAX>::collect, &a) < 0 || a.at[NFULA_PAYLOAD] == nullptr)
    return MNL_CB_OK;
  CtEntry e;
  if (tuple_of_packet(nfg->nfgen_family, static_cast<const std::uint8_t*>(mnl_attr_get_payload(a.at[NFULA_PAYLOAD])),
                      mnl_attr_get_payload_len(a.at[NFULA_PAYLOAD]), e)) {
    ++ctx->count;
    (*ctx->each)(e);
  }
  return MNL_CB_OK;
}

}  // namespace

Result<void> NetlinkCtKernel::learn_start(std::uint16_t group) {
  if (log_ != nullptr) return {};
  mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (nl == nullptr) return fail(ErrorDomain::Conntrack, errno, "nflog: open");
  auto close_with = [&](int e, const char* what) {
    mnl_socket_close(nl);
    return fail(ErrorDomain::Conntrack, e, what);
  };
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) return close_with(errno, "nflog: bind");
  // A burst of new connections must not overflow it between two drains.
  int rcvbuf = 1 << 23;
  if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  const std::uint32_t portid = mnl_socket_get_portid(nl);
  // One config message, acked: bind the group, send each message at once, copy 80 bytes of each
  // packet (its headers).
  auto config = [&](auto&& fill) -> int {
    std::array<char, 8192> storage{};
    char* buf = storage.data();
    const std::uint32_t seq = ++seq_;
    nlmsghdr* nlh = put_request(buf, NFULNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, AF_UNSPEC,
                                NFNL_SUBSYS_ULOG, group);
    fill(nlh);
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return errno;
    for (int tries = 0; tries < 100; ++tries) {
      const ssize_t n = mnl_socket_recvfrom(nl, buf, storage.size());
      if (n < 0) {
        if (errno == EAGAIN) {
          struct timespec ts{0, 1'000'000};
          nanosleep(&ts, nullptr);
          continue;
        }
        return errno;
      }
      const int r = mnl_cb_run(buf, static_cast<std::size_t>(n), seq, portid, nullptr, nullptr);
      if (r < 0) return errno;
      if (r == MNL_CB_STOP) return 0;
    }
    return ETIMEDOUT;
  };
  if (int e = config([](nlmsghdr* nlh) {
        nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_BIND};
        mnl_attr_put(nlh, NFULA_CFG_CMD, sizeof cmd, &cmd);
      });
      e != 0)
    return close_with(e, "nflog: bind group");
  // Every announcement is sent as it is logged (the kernel's default waits for 100 of them or
  // 1 s): a connection made just before its mapping is deleted must be in the socket by the time
  // the delete's round reads it.
  if (int e = config([](nlmsghdr* nlh) { mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(1)); }); e != 0)
    return close_with(e, "nflog: queue threshold");
  if (int e = config([](nlmsghdr* nlh) {
        nfulnl_msg_config_mode mode{};
        mode.copy_range = htonl(80);
        mode.copy_mode = NFULNL_COPY_PACKET;
        mnl_attr_put(nlh, NFULA_CFG_MODE, sizeof mode, &mode);
      });
      e != 0)
    return close_with(e, "nflog: copy mode");
  log_ = nl;
  return {};
}

int NetlinkCtKernel::learn_fd() const { return log_ != nullptr ? mnl_socket_get_fd(log_) : -1; }

Result<std::size_t> NetlinkCtKernel::learn(const std::function<void(const CtEntry&)>& each, bool& lost) {
  if (log_ == nullptr) return std::size_t{0};
  EachCtx ctx{&each};
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(log_, rx_.data(), rx_.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return ctx.count;
      if (errno == ENOBUFS) {
        lost = true;
        continue;
      }
      return fail(ErrorDomain::Conntrack, errno, "nflog: receive");
    }
    // Sequence 0 and any port id: these are the kernel's own messages, not answers.
    mnl_cb_run(rx_.data(), static_cast<std::size_t>(n), 0, 0, on_logged, &ctx);
  }
}

}  // namespace pcpd::ct
