// SPDX-License-Identifier: GPL-2.0-or-later
// Daemon: the request path. One recvmmsg per wakeup; each datagram passes the ingress checks
// (RFC 6887 §8.2), then the batch goes to core::Server::handle_burst (one nftables transaction
// for the changes of the whole batch) and every reply goes back to its sender from the
// address it was sent to (§8.3). With a hot-standby peer ([ha]) each datagram is a burst of its
// own, because an honoured election's reply is held until the peer acknowledged its token
// (ha_peer.hpp).
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "pcpd/daemon.hpp"
#include "wire/codec.hpp"

namespace pcpd::daemon {

namespace {

// A received datagram as core's request, its reply to be written into `out`.
core::BurstItem request_item(const Received& r, std::span<std::uint8_t> out, bool checkpoint_available) {
  core::BurstItem it;
  it.datagram = r.bytes;  // 1101 bytes when oversize (RFC 6887 §7)
  it.ctx = core::Context{r.info.source, r.info.source_port, r.info.destination, checkpoint_available};
  it.natpmp = r.bytes[0] == wire::kNatPmpVersion;
  it.out = out;
  return it;
}

std::uint64_t micros_since(std::chrono::steady_clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t).count());
}

}  // namespace

void Daemon::on_socket(const UdpServerSocket& socket) {
  // One recvmmsg per wakeup, at most UdpServerSocket::kBatch datagrams (a flood costs
  // one system call per batch), then the other descriptors get their turn.
  auto batch = socket.receive_batch();
  if (!batch) {
    if (batch.error().code != EAGAIN && batch.error().code != EWOULDBLOCK)
      log::limited(socket_limiter_, log::Level::Warning, "socket.receive_failed",
                   {{"error", error_text(batch.error())}});
  } else if (ha_) {
    for (const Received& r : *batch) handle(socket, r);
  } else {
    handle_burst(socket, *batch);
  }
  rearm_expiry();
}

bool Daemon::admit(const UdpServerSocket& socket, const Received& r) {
  const Datagram& d = r.info;
  const bool debug = log::enabled(log::Level::Debug);
  if (d.size == 0) {
    ++drops_.empty;
    return false;
  }
  // RFC 6887 §8.2 (R-HDR-2): internal interface and internal source only; dropped silently.
  switch (filter_.check(d.ifindex, d.source, d.destination)) {
    case IngressFilter::Verdict::Accept: break;
    case IngressFilter::Verdict::WrongInterface:
      ++drops_.wrong_interface;
      if (debug) log::debug("request.dropped", {{"reason", "interface"}, {"source", d.source}, {"ifindex", d.ifindex}});
      return false;
    case IngressFilter::Verdict::WrongSource:
      ++drops_.wrong_source;
      if (debug) log::debug("request.dropped", {{"reason", "source"}, {"source", d.source}, {"ifindex", d.ifindex}});
      return false;
    case IngressFilter::Verdict::NotUnicast:
      ++drops_.not_unicast;
      if (debug) log::debug("request.dropped", {{"reason", "multicast"}, {"source", d.source}, {"destination", d.destination}});
      return false;
  }
  // Hot standby: the backup answers nothing; its table is the primary's (ha_peer.hpp).
  if (ha_ && !ha_->serving()) {
    ha_->count_dropped();
    if (debug) log::debug("request.dropped", {{"reason", "ha_backup"}, {"source", d.source}});
    return false;
  }
  if (r.bytes[0] == wire::kNatPmpVersion && socket.family() != AF_INET) {  // R-PMP-1: IPv4 only
    ++drops_.natpmp_v6;
    if (debug) log::debug("request.dropped", {{"reason", "natpmp_ipv6"}, {"source", d.source}});
    return false;
  }
  return true;
}

void Daemon::respond(const UdpServerSocket& socket, const Datagram& d, std::span<const std::uint8_t> bytes,
                     std::chrono::steady_clock::time_point started) {
  // RFC 6887 §8.3 (R-HDR-1): to the source address and port, from the address it was sent to.
  if (auto r = socket.send(bytes, d.source, d.source_port, d.destination, d.ifindex); !r) {
    log::limited(socket_limiter_, log::Level::Warning, "socket.send_failed",
                 {{"to", d.source}, {"port", d.source_port}, {"error", error_text(r.error())}});
  }
  latency_.record(micros_since(started));
}

void Daemon::log_request(const Received& r, std::span<const std::uint8_t> reply) const {
  const Datagram& d = r.info;
  const bool natpmp = r.bytes[0] == wire::kNatPmpVersion;
  std::string result = "none";
  if (reply.size() >= 4) {
    result = natpmp ? std::to_string((unsigned{reply[2]} << 8) | reply[3])
                    : wire::to_string(static_cast<wire::ResultCode>(reply[3]));
  }
  log::debug(natpmp ? "natpmp.request" : "pcp.request",
             {{"source", d.source}, {"port", d.source_port}, {"local", d.destination},
              {"opcode", r.bytes.size() > 1 ? r.bytes[1] & 0x7f : -1}, {"bytes", d.size},
              {"reply_bytes", reply.size()}, {"result", result}, {"mappings", server_->mapping_count()}});
}

void Daemon::handle_burst(const UdpServerSocket& socket, std::span<const Received> batch) {
  const auto started = std::chrono::steady_clock::now();
  std::size_t n = 0;
  for (const Received& r : batch) {
    if (!admit(socket, r)) continue;
    burst_items_[n] = request_item(r, (*burst_out_)[n], true);  // no [ha]: nothing to wait for
    burst_from_[n] = &r;
    ++n;
  }
  if (n == 0) return;
  server_->handle_burst(std::span<core::BurstItem>(burst_items_.data(), n));
  note_datapath_errors("request");
  std::size_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto reply = burst_items_[i].out.first(burst_items_[i].reply);
    if (!reply.empty()) burst_replies_[m++] = Outgoing{reply, &burst_from_[i]->info};
    if (log::enabled(log::Level::Debug)) log_request(*burst_from_[i], reply);
  }
  // RFC 6887 §8.3 (R-HDR-1): each to its source address and port, from the address it was sent to.
  socket.send_batch(std::span<const Outgoing>(burst_replies_.data(), m), [this](const Outgoing& o, const Error& e) {
    log::limited(socket_limiter_, log::Level::Warning, "socket.send_failed",
                 {{"to", o.to->source}, {"port", o.to->source_port}, {"error", error_text(e)}});
  });
  const std::uint64_t us = micros_since(started);
  for (std::size_t i = 0; i < m; ++i) latency_.record(us);
}

void Daemon::handle(const UdpServerSocket& socket, const Received& r) {
  if (!admit(socket, r)) return;
  const Datagram& d = r.info;
  const auto started = std::chrono::steady_clock::now();
  // The same path as a burst, with one request: the HA peer holds its reply on its own token.
  core::BurstItem it = request_item(r, tx_, ha_->checkpoint_available());
  server_->handle_burst(std::span<core::BurstItem>(&it, 1));
  note_datapath_errors("request");
  const std::span<const std::uint8_t> reply(tx_.data(), it.reply);
  auto send = [this, &socket, d, started](std::span<const std::uint8_t> bytes) {
    respond(socket, d, bytes, started);
  };
  // RFC 7767 §3: an honoured election is answered once the standby holds it (ha_peer.hpp).
  const bool held = ha_->after_request(it, send);
  if (!reply.empty() && !held) send(reply);
  if (log::enabled(log::Level::Debug)) log_request(r, reply);
}

}  // namespace pcpd::daemon
