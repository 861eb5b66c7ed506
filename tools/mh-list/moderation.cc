// moderation.cc — mh-list pending, approve and reject: the posts and unsubscribe
// requests waiting for a confirmation (lists/<name>/pending/). Listing only reads;
// approve/reject go through list_mail.h, which queues the approved post (or removes the
// member) and writes the poster's notice. Those mails need a host name for their
// Message-ID: spool::server_hostname(), the name mh-serve uses.
#include "commands.h"
#include "common/output.h"

#include <spool/config.h>
#include <spool/error.h>
#include <spool/header_decode.h>
#include <spool/list_mail.h>
#include <spool/units.h>

#include <memory>

namespace mh::list {
namespace {

struct ModerationOptions {
  std::string list;
  std::string id;
};

std::string kind_name(spool::PendingItem::Kind k) {
  return k == spool::PendingItem::Kind::post ? "post" : "unsubscribe";
}

Result run_pending(const Tool& tool, const ModerationOptions& o) {
  const spool::Address list = parse_list(o.list);
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  const std::int64_t now = unix_now();
  Result r;
  nlohmann::json items = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows{{"ID", "KIND", "POSTER", "SIZE", "CREATED", "EXPIRES", "SUBJECT"}};
  for (const spool::PendingItem& p : spool::list_pending(layout, list)) {
    const bool expired = p.expires != 0 && p.expires <= now;
    // Subjects are shown decoded (RFC 2047), valid UTF-8, without control characters.
    const std::string subject = spool::decode_header_value(p.subject);
    items.push_back({{"id", p.id},
                     {"kind", kind_name(p.kind)},
                     {"poster", utf8_clean(p.poster)},
                     {"subject", subject},
                     {"size", p.size},
                     {"created", time_text(p.created)},
                     {"expires", time_text(p.expires)},
                     {"expired", expired}});
    rows.push_back({p.id, kind_name(p.kind), printable(p.poster), spool::format_size(p.size), time_text(p.created),
                    time_text(p.expires) + (expired ? " (expired)" : ""), subject});
  }
  r.data = {{"list", list.str()}, {"pending", items}};
  r.text = rows.size() > 1 ? format_table(rows) : "nothing pending for " + list.str() + "\n";
  return r;
}

Result run_decide(const Tool& tool, const ModerationOptions& o, bool approve) {
  const spool::Address list = parse_list(o.list);
  if (!spool::pending_id_ok(o.id))
    throw spool::Error(spool::Errc::invalid_input,
                       "not a pending id (20 hex digits, as 'mh-list pending' shows): " + quoted_input(o.id));
  spool::Layout layout = tool.open_spool();
  require_list(layout, list);
  if (!spool::read_pending(layout, list, o.id))
    throw spool::Error(spool::Errc::no_account, "no pending item " + o.id + " for " + list.str() +
                                                    " (already decided or expired? see mh-list pending)");
  const std::string hostname = spool::server_hostname(spool::load_server_config(layout.server_config()));
  const std::string done = approve ? spool::approve_pending(layout, list, o.id, hostname, unix_now())
                                   : spool::reject_pending(layout, list, o.id, hostname, unix_now());
  Result r;
  r.data = {{"list", list.str()},
            {"id", o.id},
            {approve ? "approved" : "rejected", true},
            {"detail", utf8_clean(done)}};
  r.text = printable(done) + "\n";
  return r;
}

} // namespace

void setup_pending(Tool& tool) {
  auto o = std::make_shared<ModerationOptions>();
  CLI::App* pending =
      tool.app().add_subcommand("pending", "List the posts and unsubscribe requests awaiting confirmation");
  pending->add_option("list", o->list, "LIST@DOMAIN")->required();
  tool.on(pending, [&tool, o] { return run_pending(tool, *o); });
}

void setup_approve_reject(Tool& tool) {
  auto a = std::make_shared<ModerationOptions>();
  CLI::App* approve = tool.app().add_subcommand("approve", "Approve a pending post (distribute it) or unsubscribe");
  approve->add_option("list", a->list, "LIST@DOMAIN")->required();
  approve->add_option("id", a->id, "The id 'mh-list pending' shows")->type_name("ID")->required();
  tool.on(approve, [&tool, a] { return run_decide(tool, *a, true); });

  auto r = std::make_shared<ModerationOptions>();
  CLI::App* reject = tool.app().add_subcommand("reject", "Reject a pending post (the poster is told) or unsubscribe");
  reject->add_option("list", r->list, "LIST@DOMAIN")->required();
  reject->add_option("id", r->id, "The id 'mh-list pending' shows")->type_name("ID")->required();
  tool.on(reject, [&tool, r] { return run_decide(tool, *r, false); });
}

} // namespace mh::list
