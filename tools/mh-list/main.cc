// mh-list — mailing lists (SPEC §7): provisioning and settings, members and moderators,
// the moderation queue (pending, approve, reject) and the archive. Thin front over
// libspool's mlist.h and list_mail.h; the list processor itself runs in mh-serve.
#include "commands.h"

#include <string_view>
#include <vector>

namespace {

// CLI11 (2.1) reads "--opt=" as "--opt" and then takes the NEXT word as the value, so
// `set L --subject-tag= --json` would set the tag to "--json". An empty value is
// meaningful here (--subject-tag '' = no tag, --admin '' = none), so "--opt=" is passed
// on as "--opt" "" for the options that take a value, up to a "--".
std::vector<char*> split_empty_values(int argc, char** argv) {
  static constexpr std::string_view value_options[] = {"--spool=", "--policy=", "--admin=", "--max-size=",
                                                       "--subject-tag=", "--bomb=", "--bomb-block="};
  static char empty[] = "";
  std::vector<char*> out;
  bool options_done = false;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") options_done = true;
    bool split = false;
    for (std::string_view o : value_options)
      if (!options_done && i > 0 && arg == o) split = true;
    if (!split) {
      out.push_back(argv[i]);
      continue;
    }
    argv[i][arg.size() - 1] = '\0';  // "--admin=" → "--admin"
    out.push_back(argv[i]);
    out.push_back(empty);
  }
  out.push_back(nullptr);
  return out;
}

} // namespace

int main(int argc, char** argv) {
  mh::Tool tool("mh-list", "Manage the mailing lists of the mailhost spool: settings, members, moderation, archive");
  mh::list::setup_create(tool);
  mh::list::setup_delete(tool);
  mh::list::setup_show(tool);
  mh::list::setup_set(tool);
  mh::list::setup_list(tool);
  mh::list::setup_members(tool);
  mh::list::setup_moderators(tool);
  mh::list::setup_pending(tool);
  mh::list::setup_approve_reject(tool);
  mh::list::setup_archive(tool);
  std::vector<char*> args = split_empty_values(argc, argv);
  return tool.run(static_cast<int>(args.size() - 1), args.data());
}
