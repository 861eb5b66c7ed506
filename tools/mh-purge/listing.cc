// listing.cc — how mh-purge --list / --dry-run shows a message: UIDL, size, delivery
// time (from the file name) and the decoded From and Subject. Only the header is read,
// never the body, so listing a mailbox of huge attachments stays cheap.
#include "purge.h"
#include "common/output.h"

#include <spool/header_decode.h>
#include <spool/units.h>

#include <unistd.h>

#include <cerrno>

namespace mh::purge {
namespace {

constexpr std::size_t read_chunk = 8192;

// Reads from `fd` until the empty line that ends the header (or the limit / EOF).
std::string read_head(int fd) {
  std::string buf;
  while (buf.size() < spool::max_header_block) {
    std::size_t old = buf.size();
    buf.resize(old + read_chunk);
    ssize_t n = ::read(fd, buf.data() + old, read_chunk);
    if (n < 0 && errno == EINTR) {
      buf.resize(old);
      continue;
    }
    buf.resize(old + static_cast<std::size_t>(n > 0 ? n : 0));
    if (n <= 0) break;
    // Look for the separator only in the part that could newly contain it.
    std::size_t from = old >= 3 ? old - 3 : 0;
    if (buf.find("\n\n", from) != std::string::npos || buf.find("\n\r\n", from) != std::string::npos) break;
  }
  if (buf.size() > spool::max_header_block) buf.resize(spool::max_header_block);
  return std::string(spool::header_block(buf));
}

std::string decoded_field(std::string_view head, std::string_view name) {
  auto raw = spool::header_field(head, name);
  return raw ? spool::decode_header_value(*raw) : "";
}

std::string delivered_text(std::int64_t t) {
  return spool::format_utc(std::chrono::system_clock::time_point(std::chrono::seconds(t)));
}

} // namespace

std::optional<ListedMessage> describe_message(const spool::Maildir& md, const std::string& mailbox,
                                              const spool::MessageInfo& m) {
  std::optional<int> fd = md.open_message(m);
  if (!fd) return std::nullopt; // removed meanwhile (POP3, another purge)
  std::string head = read_head(*fd);
  ::close(*fd);
  return ListedMessage{mailbox, m, decoded_field(head, "From"), decoded_field(head, "Subject")};
}

std::string listing_table(const std::vector<ListedMessage>& messages, bool show_mailbox) {
  std::vector<std::vector<std::string>> rows;
  if (show_mailbox) rows.push_back({"MAILBOX", "UIDL", "SIZE", "DELIVERED", "FROM", "SUBJECT"});
  else rows.push_back({"UIDL", "SIZE", "DELIVERED", "FROM", "SUBJECT"});
  for (const ListedMessage& m : messages) {
    std::vector<std::string> row{m.info.uidl, spool::format_size(m.info.size), delivered_text(m.info.delivered),
                                 m.from, m.subject};
    if (show_mailbox) row.insert(row.begin(), m.mailbox);
    rows.push_back(std::move(row));
  }
  return format_table(rows);
}

nlohmann::json listed_json(const ListedMessage& m) {
  return {{"mailbox", m.mailbox},
          {"uidl", m.info.uidl},
          {"size", m.info.size},
          {"delivered", delivered_text(m.info.delivered)},
          {"delivered_unix", m.info.delivered},
          {"folder", m.info.in_new ? "new" : "cur"},
          {"from", m.from},
          {"subject", m.subject}};
}

} // namespace mh::purge
