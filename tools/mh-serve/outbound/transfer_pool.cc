// transfer_pool.cc — libcurl transfers on a fixed set of threads (transfer_pool.h).
#include "outbound/transfer_pool.h"

#include <curl/curl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>

namespace mh::outbound {

struct TransferPool::Curl {
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;
};

// libcurl's socket and progress callbacks, with the pool as their client pointer.
struct SocketHooks {
  static curl_socket_t open(void* p, curlsocktype, curl_sockaddr* address) {
    auto* pool = static_cast<TransferPool*>(p);
    std::lock_guard lock(pool->sockets_mutex_);
    if (pool->stopping_seen()) return CURL_SOCKET_BAD;
    const int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd >= 0) pool->sockets_.insert(fd);
    return fd >= 0 ? fd : CURL_SOCKET_BAD;
  }
  static int close(void* p, curl_socket_t fd) {
    auto* pool = static_cast<TransferPool*>(p);
    {
      std::lock_guard lock(pool->sockets_mutex_);
      pool->sockets_.erase(fd);
    }
    return ::close(fd);
  }
  // Called while libcurl waits, also in its blocking waits: non-zero aborts.
  static int progress(void* p, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    return static_cast<TransferPool*>(p)->stopping_seen() ? 1 : 0;
  }
};

namespace {

void lock_share(CURL*, curl_lock_data data, curl_lock_access, void* p) {
  static_cast<std::array<std::mutex, CURL_LOCK_DATA_LAST>*>(p)->at(data).lock();
}
void unlock_share(CURL*, curl_lock_data data, void* p) {
  static_cast<std::array<std::mutex, CURL_LOCK_DATA_LAST>*>(p)->at(data).unlock();
}

} // namespace

TransferPool::TransferPool(unsigned threads, Done done) : done_(std::move(done)), curl_(std::make_unique<Curl>()) {
  init_curl();
  curl_->share = curl_share_init();
  if (curl_->share) {
    curl_share_setopt(curl_->share, CURLSHOPT_LOCKFUNC, lock_share);
    curl_share_setopt(curl_->share, CURLSHOPT_UNLOCKFUNC, unlock_share);
    curl_share_setopt(curl_->share, CURLSHOPT_USERDATA, &curl_->locks);
    curl_share_setopt(curl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(curl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  }
  for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { work(); });
}

TransferPool::~TransferPool() {
  stop();
  // Every easy handle is gone by now (the runner owns them); cached connections close
  // on sockets already shut down, so no QUIT is waited for.
  if (curl_->share) curl_share_cleanup(curl_->share);
}

bool TransferPool::stopping_seen() {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void TransferPool::run(Transfer* transfer) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(transfer);
  }
  wake_.notify_one();
}

void TransferPool::stop() {
  std::deque<Transfer*> unstarted;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    unstarted.swap(queue_);
  }
  wake_.notify_all();
  {
    std::lock_guard lock(sockets_mutex_);
    for (int fd : sockets_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  for (Transfer* t : unstarted) done_(t, CURLE_ABORTED_BY_CALLBACK);
}

void TransferPool::prepare(Transfer* t) {
  CURL* easy = t->handle();
  if (curl_->share) curl_easy_setopt(easy, CURLOPT_SHARE, curl_->share);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, &SocketHooks::open);
  curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &SocketHooks::close);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, this);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &SocketHooks::progress);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, this);
}

void TransferPool::work() {
  for (;;) {
    Transfer* t = nullptr;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      t = queue_.front();
      queue_.pop_front();
    }
    prepare(t);
    const CURLcode code = curl_easy_perform(t->handle());
    done_(t, code);
  }
}

} // namespace mh::outbound
