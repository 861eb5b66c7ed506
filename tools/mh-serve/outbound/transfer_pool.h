// transfer_pool.h — the threads that run libcurl SMTP transfers for the queue runner.
// Why threads and not libcurl's multi interface on one loop: libcurl 7.88 (Debian 12)
// waits *blocking*, even under the multi interface, for the reply to the end of the
// data and to QUIT (smtp_done → smtp_block_statemach; curl issues #4015, #8555). One
// slow MX would then hold every other delivery and SIGTERM for up to outbound.timeout.
// So each transfer runs with curl_easy_perform on one of outbound.concurrency threads —
// a slot per concurrent transfer, never a thread per message — and connections are
// kept for reuse in one shared libcurl connection cache (CURLSH), so back-to-back
// messages to the relay or an MX host reuse a session as they did on one loop.
// Stop: every socket libcurl opened through us is shut down, so a transfer blocked in
// libcurl returns at once, whatever it was waiting for.
#pragma once

#include "outbound/transfer.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace mh::outbound {

class TransferPool {
public:
  // `done` is called on a pool thread when a transfer has ended, with libcurl's result
  // code; it must be quick (hand the result to the runner) and must not call run().
  using Done = std::function<void(Transfer* transfer, int curl_code)>;
  TransferPool(unsigned threads, Done done);
  ~TransferPool();  // stop()
  TransferPool(const TransferPool&) = delete;
  TransferPool& operator=(const TransferPool&) = delete;

  // Queues a transfer (not owned; it must live until `done` has been called for it).
  void run(Transfer* transfer);
  // Cuts every transfer and cached connection, joins the threads. Transfers not yet
  // started are reported done with an error; idempotent.
  void stop();

  bool stopping_seen();

private:
  struct Curl;  // the shared connection cache and its locks (curl.h stays in the .cc)
  void work();
  void prepare(Transfer* transfer);

  Done done_;
  std::unique_ptr<Curl> curl_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Transfer*> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;

  friend struct SocketHooks;
  std::mutex sockets_mutex_;
  std::set<int> sockets_;  // every socket libcurl has open through us
};

} // namespace mh::outbound
