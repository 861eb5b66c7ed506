// stream.cc — plain/TLS reads and writes for one client connection.
#include "net/stream.h"

namespace mh::net {
namespace {
auto with_ec(asio::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }
} // namespace

asio::awaitable<IoResult> Stream::read_some(asio::mutable_buffer buffer) {
  IoResult r;
  if (tls_)
    r.bytes = co_await tls_->async_read_some(buffer, with_ec(r.ec));
  else
    r.bytes = co_await plain_.async_read_some(buffer, with_ec(r.ec));
  co_return r;
}

bool Stream::input_pending() {
  asio::error_code ec;
  if (socket().available(ec) > 0 && !ec) return true;
  return tls_ && SSL_pending(tls_->native_handle()) > 0;
}

asio::awaitable<IoResult> Stream::write_all(asio::const_buffer buffer) {
  IoResult r;
  if (tls_)
    r.bytes = co_await asio::async_write(*tls_, buffer, with_ec(r.ec));
  else
    r.bytes = co_await asio::async_write(plain_, buffer, with_ec(r.ec));
  co_return r;
}

asio::awaitable<asio::error_code> Stream::start_tls(std::shared_ptr<asio::ssl::context> context) {
  context_ = std::move(context);
  tls_.emplace(std::move(plain_), *context_);
  asio::error_code ec;
  co_await tls_->async_handshake(asio::ssl::stream_base::server, with_ec(ec));
  co_return ec;
}

asio::awaitable<void> Stream::close() {
  asio::error_code ec;
  if (tls_) co_await tls_->async_shutdown(with_ec(ec));
  socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket().close(ec);
}

} // namespace mh::net
