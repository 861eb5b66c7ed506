// session_internal.h — what the parts of SmtpSession share beyond session.h: the parsed
// command and the open transaction, and the reply texts used in more than one phase.
// Included only by session*.cc; nothing outside the session sees these.
#pragma once

#include "smtp/path.h"
#include "smtp/session.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mh::smtp {

struct SmtpSession::Command {
  std::string_view verb;   // upper case
  std::string_view args;   // after the first space
  PathCommand path;        // MAIL / RCPT
  std::uint64_t size = 0;  // MAIL SIZE=
};

struct SmtpSession::Transaction {
  std::string sender;
  std::uint64_t declared_size = 0;
  std::vector<std::string> recipients;  // local, canonical, each once
  std::vector<std::string> remote;      // relayed (authenticated only), each once
  std::vector<std::string> postmaster;  // RFC 5321 §4.5.1 destinations (Envelope::postmaster)
  std::vector<std::string> refused;     // "<addr>(550 5.1.1)" for the log
  std::unique_ptr<MessageSink> sink;
  std::unique_ptr<DataReader> data;
  std::string id;
  std::string write_error;              // set when appending to the sink failed
  bool storage_full = false;            // ... because the disk is full (StorageFull)
  std::string head;                     // the message's first bytes, for the From: policy
  bool keep_head = false;               // authenticated, and the policy is not `any`
};

namespace session_detail {

// At RCPT, and exempt from max_errors in reply() (RFC 5321 §4.5.3.1.10).
inline const std::string too_many_recipients = "452 4.5.3 Too many recipients";

// The refusal for an account whose sending is suspended, at MAIL and — when the hourly
// limit (SPEC §8 limits.sending_per_hour) suspends it — after DATA: one text for both.
std::string sending_suspended_reply(const std::string& account, std::string_view reason);

} // namespace session_detail

} // namespace mh::smtp
