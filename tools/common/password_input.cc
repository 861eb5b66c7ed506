// password_input.cc — stdin and terminal password entry with echo off.
#include "common/password_input.h"

#include <spool/error.h>

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <string>

namespace mh {
namespace {

using spool::Errc;
using spool::Error;
using spool::Secret;

// Reads a line from fd byte by byte (no buffering beyond the line, nothing echoed).
std::string read_line(int fd) {
  std::string line;
  char c;
  for (;;) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error(Errc::other, "cannot read password");
    }
    if (n == 0 || c == '\n') break;
    line += c;
    if (line.size() > spool::max_password_length)
      throw Error(Errc::invalid_input,
                  "password is longer than " + std::to_string(spool::max_password_length) + " bytes");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

class TerminalNoEcho {
public:
  explicit TerminalNoEcho(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) == 0) {
      termios t = saved_;
      t.c_lflag &= static_cast<tcflag_t>(~ECHO);
      t.c_lflag |= ECHONL;
      active_ = ::tcsetattr(fd_, TCSAFLUSH, &t) == 0;
    }
  }
  ~TerminalNoEcho() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }

private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

// Echo goes off before the prompt appears (as getpass does): TCSAFLUSH would discard
// anything typed between seeing the prompt and the switch.
Secret ask(int tty, const char* prompt) {
  TerminalNoEcho guard(tty);
  (void)!::write(tty, prompt, std::char_traits<char>::length(prompt));
  return Secret(read_line(tty));
}

int open_tty() {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    throw Error(Errc::usage,
                "no password given and no terminal to ask on: use --password-stdin or --random-password");
  return fd;
}

} // namespace

Secret read_password_stdin() {
  Secret s(read_line(STDIN_FILENO));
  if (s.empty()) throw Error(Errc::usage, "empty password on standard input");
  return s;
}

Secret prompt_password(const char* prompt) {
  int tty = open_tty();
  Secret s = ask(tty, prompt);
  ::close(tty);
  return s;
}

Secret prompt_new_password() {
  int tty = open_tty();
  Secret first = ask(tty, "New password: ");
  Secret second = ask(tty, "Retype new password: ");
  ::close(tty);
  if (first.reveal() != second.reveal()) throw Error(Errc::usage, "passwords do not match");
  if (first.empty()) throw Error(Errc::usage, "empty password");
  return first;
}

Secret obtain_new_password(PasswordSource source) {
  switch (source) {
  case PasswordSource::stdin_line:
    return read_password_stdin();
  case PasswordSource::random:
    return spool::random_password();
  case PasswordSource::prompt:
    break;
  }
  return prompt_new_password();
}

} // namespace mh
