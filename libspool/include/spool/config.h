// config.h — the YAML files of the spool (mailhost.yaml, domain.yaml, account.yaml) as
// plain structs. yaml-cpp stays inside libspool/src (config.cc and filters.cc share the
// strict reader of yaml_reader.h); no YAML type appears in a header. Loading is strict:
// malformed YAML, a wrong type or an unknown key (a typo must not be silently ignored)
// throws Error(bad_config) naming file, line and key; nothing is rewritten after a failed
// read. Saving is write_file_atomic(); callers hold the matching lock (see accounts.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace spool {

struct DomainConfig {
  std::string created;           // RFC 3339 UTC
  bool suspended = false;        // state: active | suspended
  std::uint64_t quota = 0;       // bytes shared by all accounts and list archives; 0 = none
  std::string postmaster;        // where postmaster@D goes without a `postmaster` account; "" = the server's mailbox
};

struct AccountConfig {
  std::string password_hash;     // crypt(3) string; never a clear password
  std::string display_name;
  std::string created;
  bool suspended = false;        // state: no login, no delivery
  bool sending_suspended = false;// sending: may still log in to POP3 and receive
  std::string sending_reason;    // why sending was suspended (shown by show / SMTP reply)
  std::uint64_t quota = 0;       // optional per-account limit in bytes; 0 = none
};

// mailhost.yaml (SPEC §8). Every key is optional; the defaults are below.
struct ServerConfig {
  std::string hostname;                                  // default: the machine's FQDN
  bool listen_given = false;                             // false: use SPEC §8 defaults
  std::map<std::string, std::vector<std::string>> listen;// service → "addr:port" list
  std::string tls_cert = "tls/cert.pem";                 // relative to the spool root
  std::string tls_key = "tls/key.pem";
  std::vector<std::string> dns_servers;                  // "ip[:port]"; empty = system resolver
  std::chrono::milliseconds dns_timeout{5000};
  std::vector<std::string> trusted_networks;             // CIDR; skip reverse-DNS check only
  // auth.allow_plaintext: true = any network, false = none, list = these networks.
  std::vector<std::string> auth_plaintext_networks{"127.0.0.1/32", "::1/128"};
  bool auth_plaintext_any = false;
  std::string relay_host;                                // "host:port"; empty = by MX
  // relay.tls: STARTTLS towards the relay and MX hosts. opportunistic = when offered;
  // required = never send in clear (the attempt fails temporarily); none = never try.
  enum class OutboundTls { opportunistic, required, none };
  OutboundTls relay_tls = OutboundTls::opportunistic;
  bool outbound_hold = false;                            // keep everything queued, send nothing
  std::uint16_t outbound_port = 25;                      // where MX hosts are dialled
  std::uint32_t outbound_concurrency = 20;               // transfers in flight, overall
  std::uint32_t outbound_per_destination = 10;           // … to one destination (domain/relay)
  // Back-off between attempts; the last step repeats (Postfix-like 5m, 15m, 1h …).
  std::vector<std::chrono::seconds> outbound_retry{std::chrono::minutes(5), std::chrono::minutes(15),
                                                   std::chrono::hours(1)};
  std::chrono::seconds outbound_give_up{std::chrono::hours(24 * 5)};  // then a DSN
  std::chrono::milliseconds outbound_timeout{300000};    // per remote reply (RFC 5321 §4.5.3.2)
  std::chrono::milliseconds outbound_connect_timeout{30000};
  std::uint32_t limit_sending_per_hour = 500;            // recipients per authenticated account; 0 = no limit
  std::uint64_t limit_message_size = 31457280;
  std::uint32_t limit_recipients = 100;
  std::uint32_t limit_connections = 1000;
  std::uint32_t limit_connections_per_ip = 50;
  std::uint32_t limit_min_data_rate = 500;               // bytes/s DATA (and POP3 commands) must average; 0 = off
  std::chrono::milliseconds timeout_command{300000};     // RFC 5321 §4.5.3.2: 5 min
  std::chrono::milliseconds timeout_data{600000};        // first DATA deadline, then limits.min_data_rate
  // How long port 25 listens before it greets; a client talking first is a protocol
  // synchronization error (postscreen's pregreet test, shortened). 0 = check at once.
  std::chrono::milliseconds timeout_greet_wait{300};
  std::string clamd_address;                             // empty = no virus scanning
  std::chrono::milliseconds clamd_timeout{60000};        // one whole scan; then 451 4.3.0
  // Content checking (with clamd only): the message plus everything its archives unpack
  // to, archives inside archives, leaf MIME parts scanned, multipart/message nesting.
  std::uint64_t limit_expanded_content = 104857600;
  std::uint32_t limit_archive_depth = 8;
  std::uint32_t limit_mime_parts = 1000;
  std::uint32_t limit_mime_depth = 50;
  std::string spam_rspamd;                               // rspamd base URL; empty = spam filters inert
  std::chrono::milliseconds spam_timeout{10000};         // one rspamd exchange; then deliver untagged
  std::string srs_domain;                                // domain of SRS0 addresses; empty = hostname
  // submission.from_header: which From: an authenticated sender may use (SPEC §8).
  enum class FromHeaderPolicy { any, own_domain, own_address };
  FromHeaderPolicy submission_from_header = FromHeaderPolicy::own_domain;
  std::string postmaster;                                // bare RCPT TO:<postmaster>; "" = SPOOL/postmaster/Maildir
  // 1-based line of each key given ("listen.smtp", "limits.message_size", …), so checks
  // made later by the daemon can name file:line:key like the loader does.
  std::map<std::string, int> key_lines;
};

DomainConfig load_domain_config(const std::filesystem::path& file);
// The same, with `file` opened by its name in `dir`, the open directory that holds it.
DomainConfig load_domain_config_at(int dir, const std::filesystem::path& file);
void save_domain_config(const std::filesystem::path& file, const DomainConfig& config);

AccountConfig load_account_config(const std::filesystem::path& file);
AccountConfig load_account_config_at(int dir, const std::filesystem::path& file);
void save_account_config(const std::filesystem::path& file, const AccountConfig& config);

// A missing mailhost.yaml means all defaults.
ServerConfig load_server_config(const std::filesystem::path& file);

// The machine's name, fully qualified when the resolver knows it (SPEC §8 default);
// "localhost" when it has none.
std::string machine_hostname();
// The name the server goes by (SMTP greeting, Message-IDs): mailhost.yaml's `hostname`,
// else machine_hostname(). Not checked here: mh-serve refuses a bad one at start.
std::string server_hostname(const ServerConfig& config);

} // namespace spool
