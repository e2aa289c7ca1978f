// SPDX-License-Identifier: GPL-2.0-or-later
// pcp_client: the PCP (RFC 6887) client library that applications link (namespace
// pcpd::client). One include for everything:
//   Client            one request/response exchange with retransmission and the epoch check
//   Session           keeps mappings alive: renewal, re-creation on epoch reset / ANNOUNCE, delete
//   UdpTransport      the real socket, connected to the server's port 5351
//   AnnounceListener  the 5350 multicast listener for unsolicited ANNOUNCEs
//   CapabilityTable   the CAPABILITY set of each server (hops-00 R-CAP-2)
// Depends only on pcp_wire and pcp_util (CMakeLists.txt: pcp_wire <- pcp_client <- pcpc).
#pragma once

#include "client/announce_listener.hpp"
#include "client/capability_table.hpp"
#include "client/client.hpp"
#include "client/clock.hpp"
#include "client/epoch_validator.hpp"
#include "client/mapping_spec.hpp"
#include "client/random.hpp"
#include "client/request_builder.hpp"
#include "client/retransmit_timer.hpp"
#include "client/session.hpp"
#include "client/transport.hpp"
#include "client/udp_transport.hpp"
