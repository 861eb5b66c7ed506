// tmp_file.h — a file being written in a spool tmp/ directory (a Maildir's or the
// queue's): the one write path of delivery.h's PendingMessage and queue.h's QueueMessage.
// Created O_EXCL in a directory that stays open, so every later step (write, fsync, link
// elsewhere, unlink) is relative to that descriptor: no path is walked again per message.
#pragma once

#include "spool/layout.h"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace spool {

class TmpFile {
public:
  TmpFile() = default;
  // Creates `name` (O_EXCL, never through a symlink, mode 0600, read-write) in the open
  // directory `dir`. `dir_path` names the directory in errors only.
  static TmpFile create(DirFd dir, fs::path dir_path, std::string name);
  // A new file `name` in `dir` holding a copy of the regular file `source` (read with
  // O_NOFOLLOW), fsynced: where a hard link would cross file systems (EXDEV).
  static TmpFile copy_of(const fs::path& source, DirFd dir, fs::path dir_path, std::string name);

  TmpFile(TmpFile&& other) noexcept;
  TmpFile& operator=(TmpFile&& other) noexcept;
  TmpFile(const TmpFile&) = delete;
  TmpFile& operator=(const TmpFile&) = delete;
  ~TmpFile() { discard(); }

  // Buffered (64 KiB): the message is never whole in memory. A failed write (a full disk)
  // discards the file, so nothing stays behind in tmp/, and throws spool::Error.
  void append(std::string_view bytes);
  // Writes out the buffer; a failure discards the file like append().
  void flush();
  // flush() and fsync(); the descriptor stays open (the queue's lock is on it).
  void sync();
  // Closes the descriptor after sync(), reporting the error NFS reports only here; the
  // name stays. A failure discards the file.
  void close();

  std::uint64_t size() const noexcept { return size_; }
  int fd() const noexcept { return fd_; }
  int dir_fd() const noexcept { return dir_.get(); }
  const std::string& name() const noexcept { return name_; }
  // Built once: append() names it in errors and must not allocate per call.
  const fs::path& path() const noexcept { return path_; }
  bool named() const noexcept { return !name_.empty(); }

  // A new read-only descriptor of what is written so far (the buffer is flushed, nothing
  // is fsynced). The caller closes it; it stays readable after the name goes.
  int open_for_reading();
  // The name goes, the descriptor stays (and with it a lock held on it).
  void unlink() noexcept;
  // Unlinks the name, closes the descriptor, forgets the buffer. Idempotent.
  void discard() noexcept;
  // Hands the descriptor to the caller (who closes it) after unlink(): the queue keeps
  // its entry's lock on it once the file has its queue name.
  int release_fd() noexcept;

private:
  DirFd dir_;
  fs::path path_;
  std::string name_;
  std::string buffer_;
  std::uint64_t size_ = 0;
  int fd_ = -1;
};

} // namespace spool
