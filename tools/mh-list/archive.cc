// archive.cc — mh-list archive LIST [N]: without N the archived posts (number, date,
// From, Subject; header fields decoded for people), with N post N exactly as stored —
// the bytes are copied to stdout unchanged, never re-encoded or re-ended. With --json the
// post is the "message" string of one document: as is when it is valid UTF-8, else in
// base64 ("encoding" says which), since a JSON string cannot carry arbitrary bytes.
// The file is opened without following symlinks (a planted link is refused, 77).
#include "commands.h"
#include "common/output.h"

#include <spool/error.h>
#include <spool/header_decode.h>
#include <spool/units.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <iostream>
#include <memory>

namespace mh::list {
namespace {

constexpr std::size_t read_chunk = 64 * 1024;

struct ArchiveOptions {
  std::string list;
  std::string number;  // N as typed; "" = list the archive
};

std::uint64_t parse_number(const std::string& text) {
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || n == 0)
    throw spool::Error(spool::Errc::invalid_input, "not a post number (1, 2, …): " + quoted_input(text));
  return n;
}

std::string base64(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? alphabet[v & 63] : '=';
  }
  return out;
}

class PostFile {
public:
  explicit PostFile(const spool::fs::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd_ < 0) spool::throw_errno("cannot open", path, errno);
  }
  ~PostFile() { ::close(fd_); }
  PostFile(const PostFile&) = delete;
  PostFile& operator=(const PostFile&) = delete;

  // Calls sink(data, n) for each chunk until the end of the file.
  template <class Sink>
  void copy(Sink&& sink) {
    char buf[read_chunk];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) spool::throw_errno("cannot read", path_, errno);
      if (n == 0) return;
      sink(buf, static_cast<std::size_t>(n));
    }
  }

private:
  spool::fs::path path_;
  int fd_ = -1;
};

Result run_listing(const spool::Layout& layout, const spool::Address& list) {
  Result r;
  nlohmann::json posts = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"SEQ", "DATE", "FROM", "SUBJECT"}};
  for (const spool::ArchivedPost& p : spool::list_archive_posts(layout, list)) {
    // decode_header_value: RFC 2047 decoded, valid UTF-8, no control characters.
    const std::string from = spool::decode_header_value(p.from);
    const std::string subject = spool::decode_header_value(p.subject);
    posts.push_back(
        {{"seq", p.seq}, {"date", time_text(p.date)}, {"from", from}, {"subject", subject}, {"size", p.size}});
    rows.push_back({std::to_string(p.seq), time_text(p.date), from, subject});
  }
  r.data = {{"list", list.str()}, {"posts", posts}};
  r.text = rows.size() > 1 ? format_table(rows) : "no archived posts in " + list.str() + "\n";
  return r;
}

Result run_archive(const Tool& tool, const ArchiveOptions& o) {
  const spool::Address list = parse_list(o.list);
  const std::optional<std::uint64_t> seq =
      o.number.empty() ? std::nullopt : std::optional<std::uint64_t>(parse_number(o.number));
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  if (!seq) return run_listing(layout, list);

  const std::optional<spool::fs::path> path = spool::archived_post_path(layout, list, *seq);
  if (!path)
    throw spool::Error(spool::Errc::no_account, "no post " + std::to_string(*seq) + " in the archive of " + list.str() +
                                                    " (see mh-list archive)");
  layout.verify_no_symlinks(*path);
  PostFile post(*path);
  Result r;
  if (!tool.common().json) {
    // Straight through, so a 30 MB post costs a 64 KB buffer.
    if (!tool.common().quiet)
      post.copy([](const char* data, std::size_t n) { std::cout.write(data, static_cast<std::streamsize>(n)); });
    return r;
  }
  std::string bytes;
  post.copy([&bytes](const char* data, std::size_t n) { bytes.append(data, n); });
  const bool text = utf8_clean(bytes) == bytes;
  r.data = {{"list", list.str()},
            {"seq", *seq},
            {"size", bytes.size()},
            {"encoding", text ? "utf-8" : "base64"},
            {"message", text ? bytes : base64(bytes)}};
  return r;
}

} // namespace

void setup_archive(Tool& tool) {
  auto o = std::make_shared<ArchiveOptions>();
  CLI::App* archive =
      tool.app().add_subcommand("archive", "List a list's archived posts, or print post N exactly as stored");
  archive->add_option("list", o->list, "LIST@DOMAIN")->required();
  archive->add_option("number", o->number, "The post's sequence number")->type_name("N");
  tool.on(archive, [&tool, o] { return run_archive(tool, *o); });
}

} // namespace mh::list
