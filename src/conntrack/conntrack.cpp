#include "conntrack/conntrack.hpp"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace pcpd::ct {
namespace {

wire::IpAddr v4_attr(const nf_conntrack* ct, enum nf_conntrack_attr a) {
  return wire::IpAddr::from_v4(ntohl(nfct_get_attr_u32(ct, a)));
}

wire::IpAddr v6_attr(const nf_conntrack* ct, enum nf_conntrack_attr a) {
  wire::IpAddr r;
  std::memcpy(r.bytes.data(), nfct_get_attr(ct, a), 16);
  return r;
}

std::uint16_t port_attr(const nf_conntrack* ct, enum nf_conntrack_attr a) {
  return nfct_attr_is_set(ct, a) ? ntohs(nfct_get_attr_u16(ct, a)) : 0;
}

struct DumpCtx {
  std::span<const core::Mapping> mappings;
  std::vector<nf_conntrack*> matched;
};

int on_entry(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
  auto* ctx = static_cast<DumpCtx*>(data);
  const auto l3 = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
  if (l3 != AF_INET && l3 != AF_INET6) return NFCT_CB_CONTINUE;
  const bool v4 = l3 == AF_INET;
  FlowTuple orig, reply;
  orig.src = v4 ? v4_attr(ct, ATTR_ORIG_IPV4_SRC) : v6_attr(ct, ATTR_ORIG_IPV6_SRC);
  orig.dst = v4 ? v4_attr(ct, ATTR_ORIG_IPV4_DST) : v6_attr(ct, ATTR_ORIG_IPV6_DST);
  reply.src = v4 ? v4_attr(ct, ATTR_REPL_IPV4_SRC) : v6_attr(ct, ATTR_REPL_IPV6_SRC);
  reply.dst = v4 ? v4_attr(ct, ATTR_REPL_IPV4_DST) : v6_attr(ct, ATTR_REPL_IPV6_DST);
  orig.src_port = port_attr(ct, ATTR_ORIG_PORT_SRC);
  orig.dst_port = port_attr(ct, ATTR_ORIG_PORT_DST);
  reply.src_port = port_attr(ct, ATTR_REPL_PORT_SRC);
  reply.dst_port = port_attr(ct, ATTR_REPL_PORT_DST);
  const auto proto = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
  for (const auto& m : ctx->mappings) {
    if (belongs_to(m, proto, orig, reply)) {
      ctx->matched.push_back(nfct_clone(ct));
      break;
    }
  }
  return NFCT_CB_CONTINUE;
}

}  // namespace

bool belongs_to(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig, const FlowTuple& reply) {
  if (m.protocol != 0 && m.protocol != protocol) return false;
  auto port_ok = [](std::uint16_t want, std::uint16_t have) { return want == 0 || want == have; };
  if (m.kind == core::MappingKind::Peer)
    return orig.src == m.internal_addr && orig.src_port == m.internal_port && orig.dst == m.remote_addr &&
           orig.dst_port == m.remote_port;
  if (!m.is_v4())
    return orig.dst == m.internal_addr && port_ok(m.internal_port, orig.dst_port);
  const bool inbound = orig.dst == m.external_addr && port_ok(m.external_port, orig.dst_port) &&
                       reply.src == m.internal_addr && port_ok(m.internal_port, reply.src_port);
  const bool outbound = orig.src == m.internal_addr && port_ok(m.internal_port, orig.src_port) &&
                        reply.dst == m.external_addr && port_ok(m.external_port, reply.dst_port);
  return inbound || outbound;
}

Result<std::unique_ptr<Conntrack>> Conntrack::open() {
  nfct_handle* dump = nfct_open(CONNTRACK, 0);
  if (dump == nullptr) return fail(ErrorDomain::Conntrack, errno, "conntrack: open");
  nfct_handle* cmd = nfct_open(CONNTRACK, 0);
  if (cmd == nullptr) {
    int e = errno;
    nfct_close(dump);
    return fail(ErrorDomain::Conntrack, e, "conntrack: open");
  }
  return std::unique_ptr<Conntrack>(new Conntrack(dump, cmd));
}

Conntrack::~Conntrack() {
  nfct_close(dump_);
  nfct_close(cmd_);
}

Result<ForgetResult> Conntrack::forget(std::span<const core::Mapping> mappings) {
  ForgetResult result;
  if (mappings.empty()) return result;
  DumpCtx ctx{mappings, {}};
  nfct_callback_register(dump_, NFCT_T_ALL, on_entry, &ctx);
  std::uint32_t family = AF_UNSPEC;
  int rc = nfct_query(dump_, NFCT_Q_DUMP, &family);
  int dump_errno = errno;
  nfct_callback_unregister(dump_);
  if (rc < 0) {
    for (auto* ct : ctx.matched) nfct_destroy(ct);
    return fail(ErrorDomain::Conntrack, dump_errno, "conntrack: dump");
  }
  for (auto* ct : ctx.matched) {
    // conntrack -D -p <proto> -s <orig src> -d <orig dst> --sport .. --dport ..
    if (nfct_query(cmd_, NFCT_Q_DESTROY, ct) == 0)
      ++result.deleted;
    else if (errno != ENOENT)
      ++result.failed;
    nfct_destroy(ct);
  }
  return result;
}

}  // namespace pcpd::ct
