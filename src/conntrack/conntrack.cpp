#include "conntrack/conntrack.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
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

struct Tuples {
  std::uint8_t protocol = 0;
  FlowTuple orig, reply;
};

// The entry's tuples, or nullopt for families pcpd does not handle.
std::optional<Tuples> tuples_of(const nf_conntrack* ct) {
  const auto l3 = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
  if (l3 != AF_INET && l3 != AF_INET6) return std::nullopt;
  const bool v4 = l3 == AF_INET;
  Tuples t;
  t.orig.src = v4 ? v4_attr(ct, ATTR_ORIG_IPV4_SRC) : v6_attr(ct, ATTR_ORIG_IPV6_SRC);
  t.orig.dst = v4 ? v4_attr(ct, ATTR_ORIG_IPV4_DST) : v6_attr(ct, ATTR_ORIG_IPV6_DST);
  t.reply.src = v4 ? v4_attr(ct, ATTR_REPL_IPV4_SRC) : v6_attr(ct, ATTR_REPL_IPV6_SRC);
  t.reply.dst = v4 ? v4_attr(ct, ATTR_REPL_IPV4_DST) : v6_attr(ct, ATTR_REPL_IPV6_DST);
  t.orig.src_port = port_attr(ct, ATTR_ORIG_PORT_SRC);
  t.orig.dst_port = port_attr(ct, ATTR_ORIG_PORT_DST);
  t.reply.src_port = port_attr(ct, ATTR_REPL_PORT_SRC);
  t.reply.dst_port = port_attr(ct, ATTR_REPL_PORT_DST);
  t.protocol = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);
  return t;
}

std::uint32_t mark_of(const nf_conntrack* ct) {
  return nfct_attr_is_set(ct, ATTR_MARK) ? nfct_get_attr_u32(ct, ATTR_MARK) : 0;
}

struct DumpCtx {
  const std::function<bool(const nf_conntrack*)>* keep;
  std::vector<nf_conntrack*> kept;
};

int on_entry(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
  auto* ctx = static_cast<DumpCtx*>(data);
  if ((*ctx->keep)(ct)) ctx->kept.push_back(nfct_clone(ct));
  return NFCT_CB_CONTINUE;
}

struct CtDeleter {
  void operator()(nf_conntrack* ct) const { nfct_destroy(ct); }
};

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

bool checkpoint_match(const core::Mapping& m, std::uint8_t protocol, const FlowTuple& orig) {
  // The election keys always carry a protocol and ports (all-protocols / all-ports mappings have
  // no elements at all, nft/element.hpp).
  if (m.protocol != protocol) return false;
  const bool from_internal = orig.src == m.internal_addr && orig.src_port == m.internal_port;
  if (m.kind == core::MappingKind::Peer)
    return from_internal && orig.dst == m.remote_addr && orig.dst_port == m.remote_port;
  if (!m.is_v4())
    return from_internal || (orig.dst == m.internal_addr && orig.dst_port == m.internal_port);
  return from_internal || (orig.dst == m.external_addr && orig.dst_port == m.external_port);
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
  // nfct_open() has no close-on-exec flag: keep the sockets out of child processes.
  fcntl(nfct_fd(dump), F_SETFD, FD_CLOEXEC);
  fcntl(nfct_fd(cmd), F_SETFD, FD_CLOEXEC);
  return std::unique_ptr<Conntrack>(new Conntrack(dump, cmd));
}

Conntrack::~Conntrack() {
  nfct_close(dump_);
  nfct_close(cmd_);
}

Result<std::vector<nf_conntrack*>> Conntrack::collect(const std::function<bool(const nf_conntrack*)>& keep) {
  // conntrack -L (both families)
  DumpCtx ctx{&keep, {}};
  nfct_callback_register(dump_, NFCT_T_ALL, on_entry, &ctx);
  std::uint32_t family = AF_UNSPEC;
  int rc = nfct_query(dump_, NFCT_Q_DUMP, &family);
  int dump_errno = errno;
  nfct_callback_unregister(dump_);
  if (rc < 0) {
    for (auto* ct : ctx.kept) nfct_destroy(ct);
    return fail(ErrorDomain::Conntrack, dump_errno, "conntrack: dump");
  }
  return std::move(ctx.kept);
}

Result<ForgetResult> Conntrack::forget(std::span<const core::Mapping> mappings) {
  ForgetResult result;
  if (mappings.empty()) return result;
  auto matched = collect([&](const nf_conntrack* ct) {
    auto t = tuples_of(ct);
    if (!t) return false;
    for (const auto& m : mappings)
      if (belongs_to(m, t->protocol, t->orig, t->reply)) return true;
    return false;
  });
  if (!matched) return tl::unexpected(matched.error());
  for (auto* ct : *matched) {
    // conntrack -D -p <proto> -s <orig src> -d <orig dst> --sport .. --dport ..
    if (nfct_query(cmd_, NFCT_Q_DESTROY, ct) == 0)
      ++result.deleted;
    else if (errno != ENOENT)
      ++result.failed;
    nfct_destroy(ct);
  }
  return result;
}

Conntrack::MarkResult Conntrack::update_marks(const std::vector<nf_conntrack*>& entries, std::uint32_t set,
                                              std::uint32_t clear, bool always) {
  MarkResult result;
  for (auto* ct : entries) {
    std::unique_ptr<nf_conntrack, CtDeleter> owned(ct);
    const std::uint32_t old_mark = mark_of(ct);
    const std::uint32_t new_mark = (old_mark & ~clear) | set;
    if (!always && new_mark == old_mark) continue;
    // conntrack -U <orig tuple> --mark <new_mark>, but sent even when nothing changes: only the
    // original tuple (and zone) and the mark, so nothing else of the entry is rewritten.
    std::unique_ptr<nf_conntrack, CtDeleter> upd(nfct_new());
    if (!upd) {
      ++result.failed;
      continue;
    }
    nfct_copy(upd.get(), ct, NFCT_CP_ORIG);
    if (nfct_attr_is_set(ct, ATTR_ZONE)) nfct_set_attr_u16(upd.get(), ATTR_ZONE, nfct_get_attr_u16(ct, ATTR_ZONE));
    if (nfct_attr_is_set(ct, ATTR_ORIG_ZONE))
      nfct_set_attr_u16(upd.get(), ATTR_ORIG_ZONE, nfct_get_attr_u16(ct, ATTR_ORIG_ZONE));
    nfct_set_attr_u32(upd.get(), ATTR_MARK, new_mark);
    if (nfct_query(cmd_, NFCT_Q_UPDATE, upd.get()) == 0)
      ++result.updated;
    else if (errno != ENOENT)
      ++result.failed;
  }
  return result;
}

Result<Conntrack::MarkResult> Conntrack::mark(std::span<const core::Mapping> mappings, std::uint32_t set,
                                              std::uint32_t clear) {
  if (mappings.empty()) return MarkResult{};
  auto matched = collect([&](const nf_conntrack* ct) {
    auto t = tuples_of(ct);
    if (!t) return false;
    for (const auto& m : mappings)
      if (checkpoint_match(m, t->protocol, t->orig)) return true;
    return false;
  });
  if (!matched) return tl::unexpected(matched.error());
  return update_marks(*matched, set, clear, set != 0);
}

Result<Conntrack::MarkResult> Conntrack::touch(std::uint32_t bits) {
  auto marked = collect([bits](const nf_conntrack* ct) { return (mark_of(ct) & bits) != 0; });
  if (!marked) return tl::unexpected(marked.error());
  return update_marks(*marked, 0, 0, true);
}

Result<std::size_t> Conntrack::count(std::uint32_t bits) {
  std::size_t n = 0;
  auto none = collect([&](const nf_conntrack* ct) {
    if ((mark_of(ct) & bits) != 0) ++n;
    return false;
  });
  if (!none) return tl::unexpected(none.error());
  return n;
}

}  // namespace pcpd::ct
