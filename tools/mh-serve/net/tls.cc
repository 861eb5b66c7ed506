// tls.cc — TLS contexts for mh-serve and the first-start self-signed certificate.
#include "net/tls.h"

#include "net/log.h"

#include <spool/atomic_file.h>
#include <spool/error.h>
#include <spool/lock.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <sys/stat.h>

namespace mh::net {
namespace {

namespace fs = std::filesystem;

// Mozilla's "intermediate" TLS 1.2 suites (forward secrecy, AEAD only); TLS 1.3 keeps
// OpenSSL's defaults, which are all modern.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";

constexpr long self_signed_days = 3650;

std::string openssl_error() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

[[noreturn]] void fail(const std::string& what) { throw spool::Error(spool::Errc::other, what + ": " + openssl_error()); }

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) fail("self-signed certificate: extension");
}

fs::path under_spool(const spool::Layout& layout, const std::string& configured) {
  const fs::path p(configured);
  return p.is_absolute() ? p : layout.root() / p;
}

} // namespace

PemPair make_self_signed(const std::string& hostname) {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("self-signed certificate: key generation");
  CertPtr cert(X509_new());
  if (!cert) fail("self-signed certificate");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) fail("self-signed certificate: serial");
  serial[0] &= 0x7f;  // a positive INTEGER
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // tolerate a client clock slightly behind
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), self_signed_days * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  add_extension(cert.get(), NID_subject_alt_name, ("DNS:" + hostname).c_str());
  add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), NID_ext_key_usage, "serverAuth");
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) fail("self-signed certificate: signing");

  PemPair pair;
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  if (!cert_bio || !key_bio || PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    fail("self-signed certificate: PEM");
  pair.cert = bio_text(cert_bio.get());
  pair.key = bio_text(key_bio.get());
  return pair;
}

TlsStore::TlsStore(const spool::Layout& layout, const serve::Settings& settings)
    : layout_(layout),
      hostname_(settings.hostname),
      cert_(under_spool(layout, settings.config.tls_cert)),
      key_(under_spool(layout, settings.config.tls_key)),
      // An administrator who names files wants those: a missing one is an error, not
      // a reason to make a certificate nobody asked for.
      may_generate_(!settings.config.key_lines.count("tls.cert") && !settings.config.key_lines.count("tls.key")) {}

bool TlsStore::load_existing() {
  if (pair_to_be_made()) return false;
  install(build());
  return true;
}

void TlsStore::load() {
  if (current()) return;
  if (pair_to_be_made()) make_pair_once();
  install(build());
}

// Several daemons may start at once on one spool (SPEC §8 "Several daemons on one
// spool"): each would make its own pair and they would mix one's key with the other's
// certificate. The spool-wide lock makes the pair once; whoever comes second finds it.
// A key without its certificate is what an interrupted first start leaves (the key is
// written first): it is made again.
void TlsStore::make_pair_once() {
  layout_.ensure_skeleton();
  const spool::FileLock lock = spool::FileLock::acquire(layout_.tls_lock());
  std::error_code ec;
  if (fs::exists(cert_, ec)) return;
  const PemPair pair = make_self_signed(hostname_);
  // Key first: a certificate without its key would stop the next start.
  spool::write_file_atomic(key_, pair.key, 0600);
  spool::write_file_atomic(cert_, pair.cert, 0644);
  log_line("tls: made a self-signed certificate for " + hostname_ + " in " + cert_.string());
}

bool TlsStore::pair_to_be_made() const {
  std::error_code ec;
  return may_generate_ && !fs::exists(cert_, ec);
}

void TlsStore::install(std::shared_ptr<asio::ssl::context> context) {
  std::lock_guard lock(mutex_);
  context_ = std::move(context);
}

void TlsStore::check() const {
  if (pair_to_be_made()) return;
  (void)build();
}

std::string TlsStore::reload() noexcept {
  try {
    install(build());
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::shared_ptr<asio::ssl::context> TlsStore::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

std::shared_ptr<asio::ssl::context> TlsStore::build() const {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) fail("tls: cipher list");
  // Mail clients rarely resume; tickets would need key rotation across reloads.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  const std::string sid = "mailhost";
  SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(sid.data()),
                                 static_cast<unsigned>(sid.size()));
  auto refuse = [](const fs::path& p, const std::string& what) {
    throw spool::Error(spool::Errc::bad_config, p.string() + ": " + what + ": " + openssl_error());
  };
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_.c_str()) != 1) refuse(cert_, "cannot use certificate (tls.cert)");
  if (SSL_CTX_use_PrivateKey_file(ctx, key_.c_str(), SSL_FILETYPE_PEM) != 1) refuse(key_, "cannot use key (tls.key)");
  if (SSL_CTX_check_private_key(ctx) != 1) refuse(key_, "key does not match " + cert_.string());
  return context;
}

} // namespace mh::net
