// SPDX-License-Identifier: GPL-2.0-or-later
// Names for logs, JSON and docs: RFC 6887 §7.4 / §19, RFC 7652 §7, RFC 7220, 7225, 7753, 7767.
#include "wire/codec.hpp"

namespace pcpd::wire {

const char* to_string(ResultCode code) {
  switch (code) {
    case ResultCode::Success: return "SUCCESS";
    case ResultCode::UnsuppVersion: return "UNSUPP_VERSION";
    case ResultCode::NotAuthorized: return "NOT_AUTHORIZED";
    case ResultCode::MalformedRequest: return "MALFORMED_REQUEST";
    case ResultCode::UnsuppOpcode: return "UNSUPP_OPCODE";
    case ResultCode::UnsuppOption: return "UNSUPP_OPTION";
    case ResultCode::MalformedOption: return "MALFORMED_OPTION";
    case ResultCode::NetworkFailure: return "NETWORK_FAILURE";
    case ResultCode::NoResources: return "NO_RESOURCES";
    case ResultCode::UnsuppProtocol: return "UNSUPP_PROTOCOL";
    case ResultCode::UserExQuota: return "USER_EX_QUOTA";
    case ResultCode::CannotProvideExternal: return "CANNOT_PROVIDE_EXTERNAL";
    case ResultCode::AddressMismatch: return "ADDRESS_MISMATCH";
    case ResultCode::ExcessiveRemotePeers: return "EXCESSIVE_REMOTE_PEERS";
    case ResultCode::Initiation: return "INITIATION";
    case ResultCode::AuthenticationRequired: return "AUTHENTICATION_REQUIRED";
    case ResultCode::AuthenticationFailed: return "AUTHENTICATION_FAILED";
    case ResultCode::AuthenticationSucceeded: return "AUTHENTICATION_SUCCEEDED";
    case ResultCode::AuthorizationFailed: return "AUTHORIZATION_FAILED";
    case ResultCode::SessionTerminated: return "SESSION_TERMINATED";
    case ResultCode::UnknownSessionId: return "UNKNOWN_SESSION_ID";
    case ResultCode::DowngradeAttackDetected: return "DOWNGRADE_ATTACK_DETECTED";
    case ResultCode::AuthenticationRequest: return "AUTHENTICATION_REQUEST";
    case ResultCode::AuthenticationReply: return "AUTHENTICATION_REPLY";
  }
  return "UNKNOWN";
}

const char* to_string(Opcode op) {
  switch (op) {
    case Opcode::Announce: return "ANNOUNCE";
    case Opcode::Map: return "MAP";
    case Opcode::Peer: return "PEER";
    case Opcode::Authentication: return "AUTHENTICATION";
  }
  return "UNKNOWN";
}

const char* option_name(std::uint8_t code, const OptionCodes& codes) {
  switch (static_cast<OptionCode>(code)) {
    case OptionCode::ThirdParty: return "THIRD_PARTY";
    case OptionCode::PreferFailure: return "PREFER_FAILURE";
    case OptionCode::Filter: return "FILTER";
    case OptionCode::Nonce: return "NONCE";
    case OptionCode::AuthenticationTag: return "AUTHENTICATION_TAG";
    case OptionCode::PaAuthenticationTag: return "PA_AUTHENTICATION_TAG";
    case OptionCode::EapPayload: return "EAP_PAYLOAD";
    case OptionCode::Prf: return "PRF";
    case OptionCode::MacAlgorithm: return "MAC_ALGORITHM";
    case OptionCode::SessionLifetime: return "SESSION_LIFETIME";
    case OptionCode::ReceivedPak: return "RECEIVED_PAK";
    case OptionCode::IdIndicator: return "ID_INDICATOR";
    case OptionCode::Description: return "DESCRIPTION";
    case OptionCode::Prefix64: return "PREFIX64";
    case OptionCode::PortSet: return "PORT_SET";
  }
  if (code == codes.checkpoint_required) return "CHECKPOINT_REQUIRED";
  if (code == codes.capability) return "CAPABILITY";
  return "UNKNOWN";
}

}  // namespace pcpd::wire
