// purge.cc — the mh-purge run: list each target Maildir once, select, then remove in
// batches (BatchRemover: unlinks + one maildirsize line per batch under the Maildir's
// writer lock), so usage stays exact to within one batch. A message that vanished
// meanwhile (POP3 DELE, another purge) is not an error and is not counted; a message
// delivered after the listing is never touched. Before removing, the listing is checked
// against maildirsize, and a mismatch — such as one left by a purge killed between an
// unlink and its maildirsize line — is repaired by a recalc under the Maildir's lock.
#include "purge.h"

#include <spool/error.h>
#include <spool/quota.h>
#include <spool/units.h>

#include <unistd.h>

#include <ctime>
#include <iostream>
#include <memory>
#include <string_view>

namespace mh::purge {
namespace {

struct Totals {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
  std::size_t mailboxes = 0; // mailboxes with at least one message removed (or listed)
  std::uint64_t vanished = 0;
};

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The listing without the second sighting of a message that a reader moved new/ -> cur/
// between the two directory reads. list() sorts by delivery time, then UIDL, so both
// sightings are neighbours; no hash set needed for 100,000 names.
std::vector<const spool::MessageInfo*> distinct(const std::vector<spool::MessageInfo>& all) {
  std::vector<const spool::MessageInfo*> out;
  out.reserve(all.size());
  for (const spool::MessageInfo& m : all)
    if (out.empty() || out.back()->uidl != m.uidl) out.push_back(&m);
  return out;
}

std::vector<const spool::MessageInfo*> select(const std::vector<const spool::MessageInfo*>& messages,
                                              const Selection& sel) {
  std::vector<const spool::MessageInfo*> out;
  for (const spool::MessageInfo* m : messages)
    if (sel.matches(*m)) out.push_back(m);
  return out;
}

// maildirsize must equal what the files say; if not (a crashed writer, or a delivery
// in flight, which the lock makes recalc wait for), rebuild it before changing it further.
void repair_usage_if_drifted(const spool::Layout& layout, const spool::Address& a, const spool::Maildir& md,
                             const std::vector<const spool::MessageInfo*>& messages) {
  spool::Usage listed;
  for (const spool::MessageInfo* m : messages) {
    listed.bytes += m->size;
    listed.messages += 1;
  }
  if (md.usage() != listed) spool::recalc_account(layout, a);
}

void note_uids_not_found(const Selection& sel, const std::unordered_set<std::string>& found, bool quiet) {
  if (quiet) return;
  for (const std::string& u : sel.uids())
    if (!found.contains(u)) std::cerr << "mh-purge: warning: no message with UIDL " << u << " in the targets\n";
}

Result run_purge(const Tool& tool, const PurgeOptions& o) {
  const bool listing = o.list || o.dry_run;
  const Selection sel = Selection::from(o, static_cast<std::int64_t>(std::time(nullptr)), o.list);
  spool::Layout layout = tool.open_spool();
  const std::vector<spool::Address> targets = resolve_targets(layout, o);

  const bool quiet = tool.common().quiet;
  Progress progress(!listing && !quiet && ::isatty(STDERR_FILENO) == 1, targets.size());
  Totals totals;
  std::vector<ListedMessage> listed;
  std::unordered_set<std::string> uids_found;
  Result r;
  r.data["per_mailbox"] = nlohmann::json::array();

  for (std::size_t i = 0; i < targets.size(); ++i) {
    const spool::Address& a = targets[i];
    spool::Maildir md(layout, layout.maildir(a));  // the spool walk: no symlink followed
    const std::vector<spool::MessageInfo> all = md.list();
    const std::vector<const spool::MessageInfo*> messages = distinct(all);
    if (!listing) repair_usage_if_drifted(layout, a, md, messages);
    const std::vector<const spool::MessageInfo*> chosen = select(messages, sel);
    progress.start_mailbox(i, chosen.size());
    Totals here;
    auto count = [&](const spool::MessageInfo& m) {
      if (!sel.uids().empty()) uids_found.insert(m.uidl);
      ++here.messages;
      here.bytes += m.size;
      progress.removed_one(m.size);
    };
    if (listing) {
      for (const spool::MessageInfo* m : chosen) {
        auto shown = describe_message(md, a.str(), *m);
        if (!shown) continue; // removed meanwhile
        listed.push_back(std::move(*shown));
        count(*m);
      }
    } else {
      BatchRemover remover(md);
      std::uint64_t not_found = 0;
      for (const spool::MessageInfo* m : chosen) {
        if (remover.remove(*m)) count(*m);
        else ++not_found;
      }
      const std::vector<spool::MessageInfo> moved = remover.finish();
      for (const spool::MessageInfo& m : moved) count(m);
      here.vanished = not_found - moved.size();
    }
    if (here.messages > 0) ++totals.mailboxes;
    totals.messages += here.messages;
    totals.bytes += here.bytes;
    totals.vanished += here.vanished;
    r.data["per_mailbox"].push_back(
        {{"address", a.str()}, {"messages", here.messages}, {"bytes", here.bytes}, {"vanished", here.vanished}});
  }
  progress.finish();
  note_uids_not_found(sel, uids_found, quiet || tool.common().json);

  const std::string amount = plural(totals.messages, "message", "messages") + " (" +
                             spool::format_size(totals.bytes) + ")";
  const std::string boxes = plural(totals.mailboxes, "mailbox", "mailboxes");
  if (o.list) {
    r.text = listing_table(listed, targets.size() > 1) + amount + " in " + boxes + "\n";
  } else if (o.dry_run) {
    r.text = listing_table(listed, targets.size() > 1) + "would remove " + amount + " from " + boxes + "\n";
  } else {
    r.text = "removed " + amount + " from " + boxes;
    if (totals.vanished > 0) r.text += "; " + plural(totals.vanished, "message was", "messages were") + " already gone";
    r.text += "\n";
  }

  r.data["mode"] = o.list ? "list" : o.dry_run ? "dry-run" : "purge";
  r.data["messages"] = totals.messages;
  r.data["bytes"] = totals.bytes;
  r.data["mailboxes"] = totals.mailboxes;
  r.data["mailboxes_scanned"] = targets.size();
  r.data["vanished"] = totals.vanished;
  if (listing) {
    r.data["listed"] = nlohmann::json::array();
    for (const ListedMessage& m : listed) r.data["listed"].push_back(listed_json(m));
  }
  return r;
}

} // namespace

void setup_purge(Tool& tool) {
  auto o = std::make_shared<PurgeOptions>();
  CLI::App& app = tool.app();
  app.require_subcommand(0); // one command: targets and selectors, no verbs
  app.add_option("target", o->targets, "ADDRESS (one mailbox) or DOMAIN (all its mailboxes)");
  app.add_flag("--all-domains", o->all_domains, "Every mailbox of every domain");
  app.add_option("--older-than", o->older_than, "Delivered more than AGE ago (30d, 12h, 2w)")->type_name("AGE");
  app.add_option("--larger-than", o->larger_than, "Larger than SIZE bytes (500K, 10M)")->type_name("SIZE");
  app.add_option("--uid", o->uids, "The message with this UIDL (repeat, or UIDL,UIDL)")
      ->type_name("UIDL")
      ->delimiter(',')
      ->allow_extra_args(false);
  app.add_flag("--everything", o->everything, "Every message (with other selectors: no effect)");
  app.add_flag("-n,--dry-run", o->dry_run, "List what would be removed; remove nothing");
  app.add_flag("--list", o->list, "List messages (UIDL, size, date, From, Subject); selectors narrow it");
  app.footer("Several selectors: a message must match all of them (AND).\n");
  tool.on(&app, [&tool, o] { return run_purge(tool, *o); });
}

} // namespace mh::purge
