// progress.cc — mh-purge's progress bar: stderr, a terminal only, and only once a run has
// taken long enough to be worth watching. Redrawn at most ten times a second; reading
// the clock is a vDSO call, so per-message updates add no system call.
#include "purge.h"

#include <spool/units.h>

#include <cstdio>

namespace mh::purge {
namespace {

constexpr auto show_after = std::chrono::milliseconds(500);
constexpr auto redraw_every = std::chrono::milliseconds(100);
constexpr int bar_width = 30;

} // namespace

Progress::Progress(bool enabled, std::size_t mailboxes)
    : enabled_(enabled), mailboxes_(mailboxes), started_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

void Progress::start_mailbox(std::size_t index, std::size_t selected) {
  mailbox_index_ = index;
  selected_here_ = selected;
  done_here_ = 0;
  draw(false);
}

void Progress::removed_one(std::uint64_t bytes) {
  ++done_here_;
  ++removed_;
  removed_bytes_ += bytes;
  draw(false);
}

void Progress::draw(bool force) {
  if (!enabled_ || mailboxes_ == 0) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && (now - started_ < show_after || now - last_draw_ < redraw_every)) return;
  last_draw_ = now;
  double here = selected_here_ == 0 ? 0.0 : static_cast<double>(done_here_) / static_cast<double>(selected_here_);
  double fraction = (static_cast<double>(mailbox_index_) + here) / static_cast<double>(mailboxes_);
  int filled = static_cast<int>(fraction * bar_width);
  std::string bar = "[" + std::string(static_cast<std::size_t>(filled), '#') +
                    std::string(static_cast<std::size_t>(bar_width - filled), '.') + "]";
  std::fprintf(stderr, "\r%s %3d%%  removed %llu messages (%s)  mailbox %zu/%zu\033[K", bar.c_str(),
               static_cast<int>(fraction * 100), static_cast<unsigned long long>(removed_),
               spool::format_size(removed_bytes_).c_str(), mailbox_index_ + 1, mailboxes_);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (!drawn_) return;
  std::fputs("\r\033[K", stderr); // leave the terminal line clean for the summary
  std::fflush(stderr);
  drawn_ = false;
}

} // namespace mh::purge
