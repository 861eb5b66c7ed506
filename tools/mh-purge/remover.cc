// remover.cc — batched removal from one Maildir for mh-purge (see BatchRemover in purge.h):
// per message only the unlink; the lock and the maildirsize line are paid once per batch.
#include "purge.h"

#include <spool/error.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <unordered_map>

namespace mh::purge {

namespace {

int open_directory(const spool::fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) spool::throw_errno("cannot open directory", dir, errno);
  return fd;
}

} // namespace

BatchRemover::BatchRemover(spool::Maildir& md) : md_(md) {
  new_fd_ = open_directory(md.new_dir());
  try {
    cur_fd_ = open_directory(md.cur_dir());
  } catch (...) {
    ::close(new_fd_);
    throw;
  }
}

BatchRemover::~BatchRemover() {
  try {
    flush();
  } catch (const std::exception& e) {
    // Unrecorded removals only over-count; the next run's check repairs them.
    std::cerr << "mh-purge: warning: " << e.what() << "\n";
  }
  ::close(new_fd_);
  ::close(cur_fd_);
}

bool BatchRemover::remove(const spool::MessageInfo& m) {
  if (!lock_.holds()) {
    lock_ = md_.writer_lock();
    batch_started_ = std::chrono::steady_clock::now();
  }
  if (::unlinkat(m.in_new ? new_fd_ : cur_fd_, m.filename.c_str(), 0) != 0) {
    if (errno != ENOENT)
      spool::throw_errno("cannot remove message", (m.in_new ? md_.new_dir() : md_.cur_dir()) / m.filename, errno);
    not_found_.push_back(m);
    return false;
  }
  pending_bytes_ += static_cast<std::int64_t>(m.size);
  pending_messages_ += 1;
  if (static_cast<std::size_t>(pending_messages_) >= max_batch_messages ||
      std::chrono::steady_clock::now() - batch_started_ >= max_batch_time)
    flush();
  return true;
}

void BatchRemover::flush() {
  if (pending_messages_ > 0) md_.record(-pending_bytes_, -pending_messages_);
  pending_bytes_ = pending_messages_ = 0;
  lock_.release();
}

std::vector<spool::MessageInfo> BatchRemover::finish() {
  flush();
  std::vector<spool::MessageInfo> removed;
  if (not_found_.empty()) return removed;
  // One listing finds every message that only moved or got flags (the UIDL stays).
  std::unordered_map<std::string, spool::MessageInfo> now;
  for (spool::MessageInfo& m : md_.list()) now.emplace(m.uidl, std::move(m));
  std::vector<spool::MessageInfo> retry = std::move(not_found_);
  not_found_.clear();
  for (const spool::MessageInfo& wanted : retry) {
    auto it = now.find(wanted.uidl);
    if (it == now.end()) continue; // gone: POP3 DELE or another purge took it
    // Maildir::remove looks it up once more if it moved yet again meanwhile.
    if (md_.remove(it->second)) removed.push_back(it->second);
  }
  return removed;
}

} // namespace mh::purge
