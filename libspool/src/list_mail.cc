// list_mail.cc — the list processor: posting rules, moderation, distribution, bounces and
// unsubscribe confirmations for mail the queue runner hands over (list_mail.h). Every
// step that sends something queues it (queue.h) before reporting "done", and a
// distribution's progress lives in lists/<name>/jobs/<queue-id>, so a crash at any point
// is finished by the runner's next attempt without a second sequence number.
#include "spool/list_mail.h"

#include "spool/accounts.h"
#include "spool/atomic_file.h"
#include "spool/delivery.h"
#include "spool/error.h"
#include "spool/list_message.h"
#include "spool/lock.h"
#include "spool/maildir.h"
#include "spool/queue.h"
#include "spool/quota.h"

#include "file_io.h"
#include "text_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>

namespace spool {
namespace {

constexpr std::size_t header_read_limit = 1024 * 1024;       // where the header block must end
constexpr std::uint64_t one_line_check_limit = 256 * 1024;   // larger posts are never "one line"
// Members between progress records: each record is an fsync'd write, and a resumed run
// repeats at most one batch (whose copies it finds in place, list_mail.h).
constexpr std::size_t local_batch = 1000;
constexpr std::size_t remote_chunk = 100;                    // recipients per queue entry (SPEC §10)

std::string control_address(const Address& list, std::string_view extension) {
  return list.local().str() + "+" + std::string(extension) + "@" + list.domain().str();
}
std::string bounces_address(const Address& list) { return control_address(list, "bounces"); }

// --- reading the queued message ---

// Bytes [from, from+max) of the file; short only at its end.
std::string read_range(int fd, std::uint64_t from, std::size_t max) {
  std::string out(max, '\0');
  std::size_t got = 0;
  while (got < max) {
    const ssize_t n = ::pread(fd, out.data() + got, max - got, static_cast<off_t>(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(Errc::other, std::string("cannot read the queued message: ") + std::strerror(errno), true);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return out;
}

// The length of a leading "Return-Path:" line (our queue keeps one on some entries).
std::uint64_t return_path_length(std::string_view head) {
  if (!detail::starts_with_field(head, "Return-Path")) return 0;
  const auto eol = head.find('\n');
  return eol == std::string_view::npos ? 0 : eol + 1;
}

// The post as the rules see it: its header block, size and (when small) the whole text.
struct Post {
  std::uint64_t start = 0;       // offset after a leading Return-Path line
  std::uint64_t size = 0;        // without it
  std::string headers;           // the header block, with its last line end
  std::uint64_t body_offset = 0; // absolute offset of the body (after the empty line)
  std::string whole;             // the whole post when ≤ one_line_check_limit
};

Post read_post(const QueuedMail& mail) {
  Post p;
  const std::string first = read_range(mail.fd, 0, 512);
  p.start = return_path_length(first);
  p.size = mail.size > p.start ? mail.size - p.start : 0;
  const std::string head = read_range(mail.fd, p.start, static_cast<std::size_t>(std::min<std::uint64_t>(p.size, header_read_limit)));
  p.headers = std::string(header_block(head));
  std::uint64_t blank = 0;
  if (p.headers.size() < head.size()) blank = head[p.headers.size()] == '\r' ? 2 : 1;
  p.body_offset = p.start + p.headers.size() + blank;
  if (p.size <= one_line_check_limit) p.whole = head.substr(0, static_cast<std::size_t>(p.size));
  return p;
}

// Calls `each` with the bytes [from, end) of the file in 64 KiB pieces.
template <class Each>
void for_each_chunk(int fd, std::uint64_t from, std::uint64_t end, Each&& each) {
  while (from < end) {
    const std::string chunk = read_range(fd, from, static_cast<std::size_t>(std::min<std::uint64_t>(end - from, 64 * 1024)));
    if (chunk.empty()) return;
    each(std::string_view(chunk));
    from += chunk.size();
  }
}

std::string read_whole(const QueuedMail& mail, std::uint64_t from) {
  return read_range(mail.fd, from, static_cast<std::size_t>(mail.size > from ? mail.size - from : 0));
}

// --- queueing the list's own mail ---

std::string enqueue(const Layout& layout, const ListServices& s, std::string sender, std::vector<std::string> to,
                    std::string_view text, std::int64_t now) {
  QueueEnvelope env;
  env.sender = std::move(sender);
  env.recipients = std::move(to);
  env.created = now;
  env.next_attempt = now;
  const std::string id = enqueue_message(layout, std::move(env), text);
  if (s.filters.queued) s.filters.queued(id);
  return id;
}

ListMailContext context(const Address& list, std::string to, const ListServices& s, std::int64_t now) {
  ListMailContext c;
  c.list_address = list.str();
  c.from = bounces_address(list);
  c.to = std::move(to);
  c.hostname = s.hostname;
  c.now = now;
  return c;
}

ListMailResult done(std::string detail) { return {ListMailResult::Fate::done, std::move(detail)}; }

// Refusal mails go to the envelope sender, from the null sender: a refusal that
// bounces is dropped, never answered (no loop).
ListMailResult refuse(const Layout& layout, const Address& list, const QueuedMail& mail, const Post& post,
                      ListRefusal why, std::uint64_t limit, const ListServices& s, std::int64_t now) {
  const std::string text =
      build_refusal_mail(context(list, mail.sender, s, now), why, post.headers, post.size, limit);
  const std::string id = enqueue(layout, s, "", {mail.sender}, text, now);
  return done("refused (" + std::string(refusal_reason(why)) + "): error mail to <" + mail.sender + "> queued as " + id);
}

// --- distribution jobs ---

struct Job {
  std::uint64_t seq = 0;
  std::string unique;            // the Maildir name of every local copy
  std::string remote_base;       // queue ids of remote chunks: base + "R" + n, failed local: base + "L" + n
  std::size_t local_done = 0;    // local members (in member order) already handled
};

std::string format_job(const Job& j) {
  return "seq: " + std::to_string(j.seq) + "\nunique: " + j.unique + "\nremote: " + j.remote_base +
         "\nlocal_done: " + std::to_string(j.local_done) + "\n";
}

std::optional<Job> read_job(const fs::path& file) {
  const auto text = read_file_if_exists(file);
  if (!text) return std::nullopt;
  Job j;
  std::map<std::string, std::string> kv;
  std::size_t line_no = 0, pos = 0;
  while (pos < text->size()) {
    const auto eol = text->find('\n', pos);
    const std::string line = text->substr(pos, eol == std::string::npos ? std::string::npos : eol - pos);
    pos = eol == std::string::npos ? text->size() : eol + 1;
    ++line_no;
    const auto colon = line.find(": ");
    if (colon == std::string::npos) throw Error(Errc::bad_config, file.string() + ":" + std::to_string(line_no) + ": not 'key: value'");
    kv[line.substr(0, colon)] = line.substr(colon + 2);
  }
  try {
    j.seq = std::stoull(kv.at("seq"));
    j.unique = kv.at("unique");
    j.remote_base = kv.at("remote");
    j.local_done = static_cast<std::size_t>(std::stoull(kv.at("local_done")));
  } catch (const std::exception&) {
    throw Error(Errc::bad_config, file.string() + ": incomplete or malformed distribution record");
  }
  if (j.unique.empty() || j.unique.find('/') != std::string::npos || !queue_id_ok(j.remote_base))
    throw Error(Errc::bad_config, file.string() + ": malformed distribution record");
  return j;
}

void save_job(const Layout& layout, const Address& list, const std::string& queue_id, const Job& j) {
  const fs::path dir = layout.list_jobs(list);
  layout.verify_no_symlinks(dir);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create", dir, errno);
  write_file_atomic(dir / queue_id, format_job(j));
}

std::string seq_name(std::uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08llu", static_cast<unsigned long long>(seq));
  return buf;
}

// The count of LFs not preceded by CR: what ",W=" adds to the size. Only a resumed
// distribution needs it; a fresh one has it from writing the archive copy.
std::uint64_t bare_lfs(const fs::path& file) {
  struct stat st;
  const detail::Fd fd = detail::open_regular_for_reading(file, st);
  std::uint64_t n = 0;
  char prev = '\0';
  for_each_chunk(fd.get(), 0, static_cast<std::uint64_t>(st.st_size), [&](std::string_view chunk) {
    for (char c : chunk) {
      if (c == '\n' && prev != '\r') ++n;
      prev = c;
    }
  });
  return n;
}

class Distribution {
public:
  Distribution(const Layout& layout, const Address& list, const ListConfig& config, const QueuedMail& mail,
               const Post& post, const ListServices& services, std::int64_t now)
      : layout_(layout), list_(list), config_(config), mail_(mail), post_(post), services_(services), now_(now) {}

  ListMailResult run() {
    Job job = start();
    const fs::path archived = layout_.list_archive(list_) / "new" / seq_name(job.seq);
    struct stat st;
    std::optional<std::uint64_t> wire;
    if (::lstat(archived.c_str(), &st) != 0) {
      if (auto refused = archive(job, archived, wire)) return *refused;
      if (::lstat(archived.c_str(), &st) != 0) throw_errno("cannot stat", archived, errno);
    }
    if (!S_ISREG(st.st_mode)) throw Error::planted(archived.string() + ": not a regular file");
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (!wire) wire = size + bare_lfs(archived);  // resumed: archived by an earlier run

    std::vector<std::string> remote;
    std::vector<Address> local;
    split_members(local, remote);
    std::size_t local_ok = deliver_local(job, archived, size, *wire, local);
    const std::size_t chunks = queue_remote(job, archived, remote);
    return done("distributed as " + list_.str() + " #" + std::to_string(job.seq) + ": " + std::to_string(local_ok) +
                " local member(s) delivered, " + std::to_string(remote.size()) + " remote in " +
                std::to_string(chunks) + " queue entr" + (chunks == 1 ? "y" : "ies") + ", " + skipped_summary());
  }

private:
  // The job record of this queue entry, made (with a new sequence number) if absent.
  Job start() {
    const fs::path file = layout_.list_jobs(list_) / mail_.queue_id;
    FileLock lock = FileLock::acquire(layout_.list_lock(list_));
    if (auto j = read_job(file)) return *j;
    Job j;
    j.seq = next_sequence(layout_, list_);
    j.unique = unique_maildir_name();
    j.remote_base = new_queue_id();
    if (j.remote_base.size() > max_queue_id_length - 9) j.remote_base.resize(max_queue_id_length - 9);
    save_job(layout_, list_, mail_.queue_id, j);
    return j;
  }

  // Writes the distributed post to archive/new/<seq> under the domain quota; a refusal
  // mail instead when the domain is full.
  std::optional<ListMailResult> archive(const Job& job, const fs::path& archived, std::optional<std::uint64_t>& wire) {
    const fs::path dir = layout_.list_archive(list_);
    PendingMessage msg = PendingMessage::begin(layout_, dir);
    ListPostHeaders h;
    h.list_name = list_.local().str();
    h.list_address = list_.str();
    h.bounces_address = bounces_address(list_);
    h.unsubscribe_address = control_address(list_, "unsubscribe");
    h.subject_tag = config_.subject_tag;
    h.seq = job.seq;
    msg.append(distribution_headers(post_.headers, h));
    msg.append("\n");
    copy_body(msg);
    msg.finish();

    Maildir md(layout_, dir);
    const QuotaLimits limits{read_domain(layout_, list_.domain()).quota, 0};
    FileLock quota_lock;
    if (limits.any()) {
      quota_lock = FileLock::acquire(layout_.quota_lock(list_.domain()));
      if (check_quota(layout_, list_, limits, msg.size()) != QuotaVerdict::fits) {
        quota_lock.release();
        return refuse(layout_, list_, mail_, post_, ListRefusal::domain_full, 0, services_, now_);
      }
    }
    FileLock writer = md.writer_lock();
    // Counted first, linked second: a crash in between over-counts, never under-counts.
    md.record(static_cast<std::int64_t>(msg.size()), 1);
    if (::link(msg.tmp_path().c_str(), archived.c_str()) != 0 && errno != EEXIST) {
      const int err = errno;
      md.record(-static_cast<std::int64_t>(msg.size()), -1);
      throw_errno("cannot link the post into", archived, err);
    }
    fsync_directory(dir / "new");
    wire = msg.wire_size();
    return std::nullopt;
  }

  void copy_body(PendingMessage& msg) {
    for_each_chunk(mail_.fd, post_.body_offset, mail_.size, [&](std::string_view chunk) { msg.append(chunk); });
  }

  void split_members(std::vector<Address>& local, std::vector<std::string>& remote) {
    for (const Member& m : list_members(layout_, list_, now_)) {
      if (m.disabled) {
        ++disabled_;
        continue;
      }
      if (auto a = account_for_address(layout_, m.address)) local.push_back(*a);
      else remote.push_back(m.address);
    }
    // Remote chunks by domain: one entry then mostly goes to one MX.
    std::stable_sort(remote.begin(), remote.end(), [](const std::string& a, const std::string& b) {
      return list_key(a.substr(a.rfind('@') + 1)) < list_key(b.substr(b.rfind('@') + 1));
    });
  }

  // Local members in batches; the job records how far it got after each batch, so a
  // resumed run repeats at most one batch — whose copies exist under the same name and
  // are not delivered twice (PendingMessage::adopt).
  std::size_t deliver_local(Job& job, const fs::path& archived, std::uint64_t size, std::uint64_t wire,
                            const std::vector<Address>& local) {
    // distribution_headers() put our Return-Path line first: filters match below it.
    const std::uint64_t trace = ("Return-Path: <" + bounces_address(list_) + ">\n").size();
    std::size_t delivered = 0;
    for (std::size_t from = std::min(job.local_done, local.size()); from < local.size(); from += local_batch) {
      const std::vector<Address> batch(local.begin() + static_cast<std::ptrdiff_t>(from),
                                       local.begin() + static_cast<std::ptrdiff_t>(std::min(from + local_batch, local.size())));
      PendingMessage copy = PendingMessage::adopt(archived, job.unique, size, wire);
      std::vector<std::string> retry;
      for (const FilteredOutcome& f :
           deliver_filtered(layout_, copy, trace, batch, bounces_address(list_), services_.filters, now_)) {
        using S = DeliveryOutcome::Status;
        const std::string who = f.delivery.recipient.str();
        switch (f.delivery.status) {
        case S::delivered: ++delivered; break;
        case S::failed_temporary: retry.push_back(who); break;  // the queue retries it
        case S::over_quota:
        case S::no_account:
          ++refused_;
          record_member_bounce(layout_, list_, who, now_);
          break;
        }
      }
      if (!retry.empty()) queue_entry(job.remote_base + "L" + std::to_string(from / local_batch), archived, retry);
      job.local_done = from + batch.size();
      save_job(layout_, list_, mail_.queue_id, job);
    }
    return delivered;
  }

  std::size_t queue_remote(const Job& job, const fs::path& archived, const std::vector<std::string>& remote) {
    std::size_t chunks = 0;
    for (std::size_t from = 0; from < remote.size(); from += remote_chunk, ++chunks) {
      const std::vector<std::string> chunk(remote.begin() + static_cast<std::ptrdiff_t>(from),
                                           remote.begin() + static_cast<std::ptrdiff_t>(std::min(from + remote_chunk, remote.size())));
      queue_entry(job.remote_base + "R" + std::to_string(chunks), archived, chunk);
    }
    return chunks;
  }

  // An entry under a fixed id (so a resumed run finds it queued), from LIST+bounces, with
  // a copy of the archived post of its own: the queue locks an entry by flock on its
  // .msg, which belongs to the inode, so entries sharing the archive's inode would let the
  // runner send only one of them at a time.
  void queue_entry(const std::string& id, const fs::path& archived, const std::vector<std::string>& recipients) {
    struct stat st;
    if (::lstat((layout_.queue_dir() / (id + ".env")).c_str(), &st) == 0) return;  // queued before a crash
    PendingMessage copy = PendingMessage::begin(layout_, layout_.list_archive(list_));
    const detail::Fd fd = detail::open_regular_for_reading(archived, st);
    for_each_chunk(fd.get(), 0, static_cast<std::uint64_t>(st.st_size), [&](std::string_view chunk) { copy.append(chunk); });
    copy.finish();
    QueueMessage q = QueueMessage::adopt(layout_, copy.tmp_path(), id);
    QueueEnvelope env;
    env.sender = bounces_address(list_);
    env.recipients = recipients;
    env.created = now_;
    env.next_attempt = now_;
    q.commit(std::move(env));
    q.release();
    if (services_.filters.queued) services_.filters.queued(id);
  }  // the copy's tmp/ name goes with `copy`; the queue keeps its link

  std::string skipped_summary() const {
    return std::to_string(disabled_) + " disabled, " + std::to_string(refused_) + " refused (quota/unknown)";
  }

  const Layout& layout_;
  const Address& list_;
  const ListConfig& config_;
  const QueuedMail& mail_;
  const Post& post_;
  const ListServices& services_;
  std::int64_t now_;
  std::size_t disabled_ = 0;
  std::size_t refused_ = 0;
};

// --- pending confirmations ---

std::string new_token() { return detail::ascii_lowered(detail::random_hex(10)); }

// Hard-links the queued post into pending/<id>.msg (a copy across file systems).
void keep_post(const Layout& layout, const Address& list, const std::string& id, const QueuedMail& mail) {
  const fs::path dir = layout.list_pending(list);
  layout.verify_no_symlinks(dir);
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) throw_errno("cannot create", dir, errno);
  const fs::path target = dir / (id + ".msg");
  if (::link(mail.path.c_str(), target.c_str()) == 0) return;
  if (errno != EXDEV) throw_errno("cannot keep the post as", target, errno);
  const std::string whole = read_whole(mail, 0);
  write_file_atomic(target, whole, 0640);
}

// Keeps the post in pending/ under a new token, for a moderator's confirmation or
// mh-list approve. Returns the item.
PendingItem hold_post(const Layout& layout, const Address& list, const ListConfig& config, const QueuedMail& mail,
                      const Post& post, std::int64_t now) {
  PendingItem item;
  item.id = new_token();
  item.kind = PendingItem::Kind::post;
  item.poster = mail.sender;
  item.subject = header_value(post.headers, "Subject").value_or("");
  item.size = post.size;
  item.created = now;
  item.expires = now + config.confirm_expiry.count();
  FileLock lock = FileLock::acquire(layout.list_lock(list));
  keep_post(layout, list, item.id, mail);
  write_pending(layout, list, item);
  return item;
}

ListMailResult hold_for_moderation(const Layout& layout, const Address& list, const ListConfig& config,
                                   const QueuedMail& mail, const Post& post, const ListServices& s, std::int64_t now) {
  const PendingItem item = hold_post(layout, list, config, mail, post, now);
  const std::string confirm = control_address(list, "confirm-" + item.id);
  const std::string whole = read_whole(mail, post.start);
  std::string ids;
  for (const std::string& moderator : config.moderators) {
    const std::string text = build_moderation_request(context(list, moderator, s, now), confirm, mail.sender, whole,
                                                      item.expires);
    ids += " " + enqueue(layout, s, "", {moderator}, text, now);
  }
  return done("held for moderation as " + item.id + "; confirmation request(s) queued:" + ids);
}

// With the moderators policy and nobody registered (SPEC §7): the post goes to the admin
// forward address as it is, from LIST+bounces so a bounce of it comes back to the list.
ListMailResult forward_to_admin(const Layout& layout, const Address& list, const ListConfig& config,
                                const QueuedMail& mail, const Post& post, const ListServices& s, std::int64_t now) {
  if (config.admin.empty()) {
    const PendingItem item = hold_post(layout, list, config, mail, post, now);
    return done("held as " + item.id + ": moderated list without moderators or admin address (mh-list approve)");
  }
  const std::string id = enqueue(layout, s, bounces_address(list), {config.admin}, read_whole(mail, post.start), now);
  return done("moderated list without moderators: forwarded to the admin address <" + config.admin + "> as " + id);
}

bool sender_is_moderator(const ListConfig& config, const std::vector<std::string>& posters) {
  for (const auto& m : config.moderators)
    for (const auto& p : posters)
      if (list_key(m) == list_key(p)) return true;
  return false;
}

ListMailResult handle_post(const Layout& layout, const Address& list, const QueuedMail& mail, const ListServices& s,
                           std::int64_t now) {
  const ListConfig config = read_list(layout, list);
  const Post post = read_post(mail);
  const std::optional<std::string> from = first_address(header_value(post.headers, "From").value_or(""));
  if (mail.sender.empty() || is_system_poster(mail.sender)) return done("dropped: system or null sender <" + mail.sender + ">");
  if (from && is_system_poster(*from)) return done("dropped: system poster " + *from);
  // Our own post coming back (a member forwarding to the list): never distributed again.
  if (auto name = header_value(post.headers, "X-ML-Name"); name && detail::iequals(*name, list.local().str()) &&
                                                           header_value(post.headers, "List-Id"))
    return done("dropped: a post of this list came back (X-ML-Name " + *name + ")");

  // A distribution that started before a crash: the rules were passed then, and this
  // retry must not count the post against its poster again.
  struct stat st;
  if (::lstat((layout.list_jobs(list) / mail.queue_id).c_str(), &st) == 0)
    return Distribution(layout, list, config, mail, post, s, now).run();

  const std::string poster = from.value_or(mail.sender);
  BombCheck bomb;
  {
    FileLock lock = FileLock::acquire(layout.list_lock(list));
    bomb = count_post(layout, list, config, poster, now);
  }
  if (bomb.refused) return refuse(layout, list, mail, post, ListRefusal::mail_bomb, 0, s, now);
  if (post.size > config.max_size) return refuse(layout, list, mail, post, ListRefusal::too_large, config.max_size, s, now);
  if (!post.whole.empty() && is_one_line_body(post.whole))
    return refuse(layout, list, mail, post, ListRefusal::one_line_body, 0, s, now);

  std::vector<std::string> posters{mail.sender};
  if (from) posters.push_back(*from);
  switch (config.policy) {
  case ListPolicy::anyone: break;
  case ListPolicy::members: {
    const bool member = std::any_of(posters.begin(), posters.end(), [&](const std::string& p) { return is_member(layout, list, p); });
    if (!member && !sender_is_moderator(config, posters))
      return refuse(layout, list, mail, post, ListRefusal::not_member, 0, s, now);
    break;
  }
  case ListPolicy::moderators:
    if (sender_is_moderator(config, posters)) break;
    if (config.moderators.empty()) return forward_to_admin(layout, list, config, mail, post, s, now);
    return hold_for_moderation(layout, list, config, mail, post, s, now);
  }
  return Distribution(layout, list, config, mail, post, s, now).run();
}

ListMailResult handle_approved(const Layout& layout, const Address& list, const QueuedMail& mail,
                               const ListServices& s, std::int64_t now) {
  const ListConfig config = read_list(layout, list);
  const Post post = read_post(mail);
  return Distribution(layout, list, config, mail, post, s, now).run();
}

ListMailResult handle_bounce(const Layout& layout, const Address& list, const QueuedMail& mail, std::int64_t now) {
  const std::string text = read_range(mail.fd, 0, static_cast<std::size_t>(std::min<std::uint64_t>(mail.size, 1024 * 1024)));
  const std::vector<std::string> failed = failed_recipients(text);
  if (failed.empty()) return done("not a delivery-status notification: dropped");
  std::string counted, disabled;
  for (const std::string& r : failed) {
    if (!is_member(layout, list, r)) continue;
    counted += " " + r;
    if (record_member_bounce(layout, list, r, now)) disabled += " " + r;
  }
  if (counted.empty()) return done("bounce for non-members only: dropped");
  return done("bounce counted for" + counted + (disabled.empty() ? "" : "; disabled:" + disabled));
}

ListMailResult handle_unsubscribe(const Layout& layout, const Address& list, const QueuedMail& mail,
                                  const ListServices& s, std::int64_t now) {
  if (mail.sender.empty() || is_system_poster(mail.sender)) return done("unsubscribe from a system or null sender: dropped");
  // Only the envelope sender gets the confirmation: asking for someone else's removal
  // must not make the list mail them.
  if (!is_member(layout, list, mail.sender)) return done("unsubscribe from non-member <" + mail.sender + ">: ignored");
  const ListConfig config = read_list(layout, list);
  PendingItem item;
  item.id = new_token();
  item.kind = PendingItem::Kind::unsubscribe;
  item.poster = mail.sender;
  item.created = now;
  item.expires = now + config.confirm_expiry.count();
  {
    FileLock lock = FileLock::acquire(layout.list_lock(list));
    write_pending(layout, list, item);
  }
  const std::string confirm = control_address(list, "confirm-" + item.id);
  const std::string id = enqueue(layout, s, "", {mail.sender},
                                 build_unsubscribe_request(context(list, mail.sender, s, now), confirm, item.expires), now);
  return done("unsubscribe of <" + mail.sender + "> awaits confirmation " + item.id + "; request queued as " + id);
}

std::string pending_gone(const Address& list, std::string_view id) {
  return list.str() + " has no pending item " + std::string(id);
}

// Takes a pending item (single use: the first confirmation wins, under the list lock)
// and carries it out. Returns what happened.
std::string confirm_item(const Layout& layout, const Address& list, std::string_view id, const std::string& hostname,
                         std::int64_t now, const std::function<void(const std::string&)>& queued) {
  std::optional<PendingItem> item;
  std::string qid;
  {
    FileLock lock = FileLock::acquire(layout.list_lock(list));
    item = read_pending(layout, list, id);
    if (!item) throw Error(Errc::no_account, pending_gone(list, id));
    if (item->expires <= now) {
      remove_pending(layout, list, id);
      throw Error(Errc::no_account,
                  list.str() + ": pending item " + std::string(id) + " expired on " + detail::format_date(item->expires));
    }
    if (item->kind == PendingItem::Kind::post) {
      const fs::path msg = layout.list_pending(list) / (std::string(id) + ".msg");
      layout.verify_no_symlinks(msg);
      QueueMessage q = QueueMessage::adopt(layout, msg);
      QueueEnvelope env;
      env.sender = item->poster;
      env.recipients = {control_address(list, "approved-" + std::string(id))};
      env.created = now;
      env.next_attempt = now;
      q.commit(std::move(env));
      qid = q.id();
      q.release();
    }
    remove_pending(layout, list, id);  // gone before the lock is let go: one use only
  }
  if (item->kind == PendingItem::Kind::post) {
    if (queued) queued(qid);
    return "approved post " + std::string(id) + " from <" + item->poster + ">: queued for distribution as " + qid;
  }
  remove_members(layout, list, {item->poster});  // takes the list lock itself
  ListServices s;
  s.hostname = hostname;
  s.filters.queued = queued;
  enqueue(layout, s, "", {item->poster}, build_unsubscribed_notice(context(list, item->poster, s, now)), now);
  return "removed <" + item->poster + "> from " + list.str();
}

ListMailResult handle_confirm(const Layout& layout, const ListTarget& target, const QueuedMail& mail,
                              const ListServices& s, std::int64_t now) {
  // Only a person confirms: a bounce, a vacation responder or other automatic mail that
  // reaches the address must not approve a post (RFC 3834 marks those).
  if (mail.sender.empty() || is_system_poster(mail.sender))
    return done("confirmation ignored: from a system or null sender <" + mail.sender + ">");
  const Post post = read_post(mail);
  if (auto automatic = header_value(post.headers, "Auto-Submitted"); automatic && !detail::iequals(*automatic, "no"))
    return done("confirmation ignored: automatic mail (Auto-Submitted: " + *automatic + ")");
  try {
    return done(confirm_item(layout, target.list, target.token, s.hostname, now, s.filters.queued));
  } catch (const Error& e) {
    // Unknown, used or expired: dropped without a reply, so no confirmation can loop.
    if (e.code() == Errc::no_account) return done(std::string("confirmation ignored: ") + e.what());
    throw;
  }
}

} // namespace

std::string ListTarget::str() const {
  switch (kind) {
  case Kind::post: return list.str();
  case Kind::bounces: return control_address(list, "bounces");
  case Kind::unsubscribe: return control_address(list, "unsubscribe");
  case Kind::confirm: return control_address(list, "confirm-" + token);
  case Kind::approved: return control_address(list, "approved-" + token);
  }
  return list.str();
}

std::optional<ListTarget> find_list_target(const Layout& layout, std::string_view local, const Domain& domain,
                                           bool internal) {
  const std::string lowered = detail::ascii_lowered(local);
  const auto plus = lowered.find('+');
  std::optional<LocalPart> name;
  try {
    name = LocalPart::parse(std::string_view(lowered).substr(0, plus));
  } catch (const Error&) {
    return std::nullopt;
  }
  ListTarget t{ListTarget::Kind::post, Address(*name, domain), {}};
  if (!list_exists(layout, t.list)) return std::nullopt;
  if (plus == std::string::npos) return t;
  const std::string ext = lowered.substr(plus + 1);
  const auto token_after = [&](std::string_view prefix) -> std::optional<std::string> {
    if (ext.rfind(prefix, 0) != 0) return std::nullopt;
    std::string token = ext.substr(prefix.size());
    return pending_id_ok(token) ? std::optional<std::string>(token) : std::nullopt;
  };
  if (ext == "bounces") t.kind = ListTarget::Kind::bounces;
  else if (ext == "unsubscribe") t.kind = ListTarget::Kind::unsubscribe;
  else if (auto tok = token_after("confirm-")) {
    t.kind = ListTarget::Kind::confirm;
    t.token = *tok;
  } else if (auto tok2 = internal ? token_after("approved-") : std::nullopt) {
    t.kind = ListTarget::Kind::approved;
    t.token = *tok2;
  } else {
    return std::nullopt;
  }
  return t;
}

ListMailResult handle_list_mail(const Layout& layout, const ListTarget& target, const QueuedMail& mail,
                                const ListServices& services, std::int64_t now) {
  try {
    if (!list_exists(layout, target.list))
      return {ListMailResult::Fate::bounced, "550 5.1.1 <" + target.str() + ">: User unknown"};
    sweep_list(layout, target.list, now);
    switch (target.kind) {
    case ListTarget::Kind::post: return handle_post(layout, target.list, mail, services, now);
    case ListTarget::Kind::approved: return handle_approved(layout, target.list, mail, services, now);
    case ListTarget::Kind::bounces: return handle_bounce(layout, target.list, mail, now);
    case ListTarget::Kind::unsubscribe: return handle_unsubscribe(layout, target.list, mail, services, now);
    case ListTarget::Kind::confirm: return handle_confirm(layout, target, mail, services, now);
    }
    return {ListMailResult::Fate::bounced, "550 5.1.1 <" + target.str() + ">: User unknown"};
  } catch (const Error& e) {
    if (e.code() == Errc::no_account) return {ListMailResult::Fate::bounced, "550 5.1.1 <" + target.str() + ">: User unknown"};
    return {ListMailResult::Fate::deferred, std::string("451 4.3.0 list processing failed: ") + e.what()};
  } catch (const std::exception& e) {
    return {ListMailResult::Fate::deferred, std::string("451 4.3.0 list processing failed: ") + e.what()};
  }
}

std::string approve_pending(const Layout& layout, const Address& list, std::string_view id,
                            const std::string& hostname, std::int64_t now) {
  if (!pending_id_ok(id)) throw Error(Errc::invalid_input, "not a pending id (20 hex digits): " + std::string(id));
  if (!list_exists(layout, list)) throw Error(Errc::no_account, "no such list: " + list.str());
  return confirm_item(layout, list, id, hostname, now, {});
}

std::string reject_pending(const Layout& layout, const Address& list, std::string_view id,
                           const std::string& hostname, std::int64_t now) {
  if (!pending_id_ok(id)) throw Error(Errc::invalid_input, "not a pending id (20 hex digits): " + std::string(id));
  if (!list_exists(layout, list)) throw Error(Errc::no_account, "no such list: " + list.str());
  FileLock lock = FileLock::acquire(layout.list_lock(list));
  const std::optional<PendingItem> item = read_pending(layout, list, id);
  if (!item) throw Error(Errc::no_account, pending_gone(list, id));
  std::string told;
  if (item->kind == PendingItem::Kind::post && !item->poster.empty() && !is_system_poster(item->poster)) {
    const fs::path msg = layout.list_pending(list) / (std::string(id) + ".msg");
    layout.verify_no_symlinks(msg);
    const std::string head = read_file_if_exists(msg).value_or("");
    const std::string headers(header_block(std::string_view(head).substr(return_path_length(head))));
    ListServices s;
    s.hostname = hostname;
    const std::string text = build_refusal_mail(context(list, item->poster, s, now), ListRefusal::rejected, headers,
                                                item->size, 0);
    told = "; the poster is told (queued as " + enqueue(layout, s, "", {item->poster}, text, now) + ")";
  }
  remove_pending(layout, list, id);
  return "rejected " + std::string(id) + " from <" + item->poster + ">" + told;
}

std::size_t sweep_list(const Layout& layout, const Address& list, std::int64_t now) {
  std::size_t removed = 0;
  FileLock lock = FileLock::acquire(layout.list_lock(list));
  for (const PendingItem& item : list_pending(layout, list))
    if (item.expires <= now && remove_pending(layout, list, item.id)) ++removed;
  // A job whose queue entry is gone has finished: the entry is removed only after "done".
  const fs::path jobs = layout.list_jobs(list);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(jobs, ec)) {
    const std::string id = e.path().filename().string();
    if (!queue_id_ok(id)) continue;
    struct stat st;
    if (::lstat((layout.queue_dir() / (id + ".env")).c_str(), &st) == 0) continue;
    if (::lstat((layout.queue_dir() / (id + ".msg")).c_str(), &st) == 0) continue;
    if (::unlink(e.path().c_str()) == 0) ++removed;
  }
  return removed;
}

} // namespace spool
