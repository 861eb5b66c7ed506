// stream.h — a client connection's bytes: plain TCP that may turn into TLS (STARTTLS,
// STLS) or TLS from the first byte (SMTPS, POP3S). Sessions read and write through it
// without caring which; the watchdog and the stop logic reach the TCP socket below.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <memory>
#include <optional>

namespace mh::net {

struct IoResult {
  asio::error_code ec;
  std::size_t bytes = 0;
};

class Stream {
public:
  explicit Stream(asio::ip::tcp::socket socket) : plain_(std::move(socket)) {}

  // The TCP socket underneath (to cancel, shut down or close it).
  asio::ip::tcp::socket& socket() noexcept { return tls_ ? tls_->next_layer() : plain_; }
  bool secure() const noexcept { return tls_.has_value(); }
  // True when the client has sent bytes we have not read yet: waiting in the kernel, or
  // decrypted and held by OpenSSL. (TLS records still inside Asio's engine buffer are not
  // seen: the check is exact on plain TCP, best effort under TLS.)
  bool input_pending();

  asio::awaitable<IoResult> read_some(asio::mutable_buffer buffer);
  asio::awaitable<IoResult> write_all(asio::const_buffer buffer);
  // Server-side handshake; the context is kept for the connection's life, so a SIGHUP
  // reload never pulls it from under an open session. Anything the client sent before
  // the handshake and that was already read is the caller's to drop (CVE-2011-0411).
  asio::awaitable<asio::error_code> start_tls(std::shared_ptr<asio::ssl::context> context);
  // TLS: sends close_notify (bounded by the caller's watchdog); then closes TCP.
  asio::awaitable<void> close();

private:
  asio::ip::tcp::socket plain_;
  std::shared_ptr<asio::ssl::context> context_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
};

} // namespace mh::net
