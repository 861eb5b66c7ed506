// tls.h — the server's TLS settings (SPEC §8): TLS 1.2 and 1.3 only, modern ciphers,
// certificate and key from mailhost.yaml (`tls.cert`, `tls.key`, relative to the spool).
// With neither key given and no files yet, a self-signed pair for the host name is made
// in SPOOL/tls/ on first start, so a fresh spool serves TLS out of the box. SIGHUP
// reloads: new connections get the new context, open sessions keep theirs.
#pragma once

#include "serve_config.h"

#include <spool/layout.h>

#include <asio/ssl/context.hpp>

#include <filesystem>
#include <memory>
#include <mutex>

namespace mh::net {

class TlsStore {
public:
  TlsStore(const spool::Layout& layout, const serve::Settings& settings);

  // Before the privilege drop: loads the pair when its files exist, so a key only root
  // may read works. False (nothing loaded) when the self-signed pair is still to be made.
  // Throws spool::Error(bad_config) naming the file when a pair cannot be used.
  bool load_existing();
  // After the privilege drop (generated files belong to the spool owner): unless
  // load_existing() loaded a pair, makes the self-signed one when allowed (once per
  // spool, under a spool lock) and loads it. Throws like load_existing().
  void load();
  // --check-config: the pair can be used (or will be made at the first start). Throws
  // like load(), writes nothing.
  void check() const;
  // SIGHUP: loads again, as the spool owner (a key only root may read cannot be reloaded:
  // the old context stays); on failure keeps the current context and returns the reason.
  std::string reload() noexcept;
  // The context for a new connection (shared: it outlives a reload for open sessions).
  std::shared_ptr<asio::ssl::context> current() const;

  const std::filesystem::path& cert_path() const noexcept { return cert_; }

private:
  std::shared_ptr<asio::ssl::context> build() const;
  // No certificate yet and none named in mailhost.yaml: the self-signed pair is ours to make.
  bool pair_to_be_made() const;
  void make_pair_once();
  void install(std::shared_ptr<asio::ssl::context> context);

  const spool::Layout& layout_;
  std::string hostname_;
  std::filesystem::path cert_;
  std::filesystem::path key_;
  bool may_generate_;
  mutable std::mutex mutex_;
  std::shared_ptr<asio::ssl::context> context_;
};

// A self-signed certificate and its key (PEM) for `hostname`: EC P-256, SHA-256,
// subjectAltName DNS:hostname, valid for ten years. Exposed for tests.
struct PemPair {
  std::string cert;
  std::string key;
};
PemPair make_self_signed(const std::string& hostname);

} // namespace mh::net
