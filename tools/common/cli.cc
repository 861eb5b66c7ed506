// cli.cc — common options, error → exit code, output.
#include "common/cli.h"

#include <spool/error.h>
#include <spool/owner.h>
#include <spool/text.h>

#include <iostream>
#include <optional>
#include <string_view>

namespace mh {
namespace {

// JSON for stdout that can never throw: invalid UTF-8 (a value from an old spool file, a
// name nobody validated) becomes U+FFFD instead of aborting the tool (nlohmann::json's
// dump() throws type_error 316 on it by default).
std::string json_text(const nlohmann::json& doc) {
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

// SPEC §8: every command-line value is UTF-8 text, else exit 65 — checked before parsing
// so no option or operand can carry a stray byte (a lone surrogate from a script, Latin-1)
// into the spool. The message says where the value is, never echoes the bytes.
std::optional<std::string> non_utf8_argument(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const std::size_t bad = spool::utf8_error_at(arg);
    if (bad == std::string_view::npos) continue;
    std::string what = "argument " + std::to_string(i);
    const std::size_t eq = arg.find('=');
    if (arg.starts_with("--") && eq != std::string_view::npos && bad > eq)
      what += " (the value of " + std::string(arg.substr(0, eq)) + ")";
    else if (i > 1 && std::string_view(argv[i - 1]).starts_with("-"))
      what += " (after " + std::string(argv[i - 1]) + ")";
    return what + " is not valid UTF-8 (byte " + std::to_string(bad + 1) + "); command-line values must be UTF-8 text";
  }
  return std::nullopt;
}

} // namespace

Tool::Tool(std::string name, const std::string& description) : name_(std::move(name)), app_(description, name_) {
  app_.set_version_flag("--version", std::string(name_) + " (mailhost) " + MAILHOST_VERSION);
  app_.require_subcommand(1);
  // Subcommands pass options they do not know up to here, so common options work
  // after the subcommand too (mh-user --spool S add X --json).
  app_.fallthrough();
  app_.add_option("--spool", common_.spool, "Spool directory (default: $MH_SPOOL, else /var/spool/mailhost)")
      ->type_name("DIR");
  app_.add_flag("--json", common_.json, "Print one JSON document on stdout instead of text");
  app_.add_flag("-q,--quiet", common_.quiet, "Print nothing but errors");
}

void Tool::on(CLI::App* sub, std::function<Result()> action) {
  sub->callback([this, action = std::move(action)] { selected_ = action; });
}

CLI::App* add_group(CLI::App& parent, const std::string& name, const std::string& description) {
  CLI::App* group = parent.add_subcommand(name, description);
  group->require_subcommand(1);
  return group;
}

spool::Layout Tool::open_spool() const {
  spool::Layout layout(spool::resolve_spool_root(common_.spool));
  spool::act_as_spool_owner(layout);
  return layout;
}

int Tool::print_error(int code, const std::string& message) const {
  std::cerr << name_ << ": error: " << message << "\n";
  if (common_.json) {
    nlohmann::json doc = {{"error", {{"code", code}, {"message", message}}}};
    std::cout << json_text(doc) << "\n";
  }
  return code;
}

int Tool::run(int argc, char** argv) {
  if (auto problem = non_utf8_argument(argc, argv)) {
    // Parsing has not run, so --json is not set yet: the error must still be the one
    // JSON document a --json run prints.
    for (int i = 1; i < argc && std::string_view(argv[i]) != "--"; ++i)
      if (std::string_view(argv[i]) == "--json") common_.json = true;
    return print_error(static_cast<int>(spool::Errc::invalid_input), *problem);
  }
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app_.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app_.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app_.exit(e);
  } catch (const CLI::ExtrasError& e) {
    // mh-user does not echo a stray operand: the most common one there is a password
    // typed on the command line. Stray options (which start with '-') are named, and the
    // other tools name whatever was extra.
    if (std::string(e.what()).find(": -") != std::string::npos || name_ != "mh-user")
      return print_error(64, std::string(e.what()) + " (see " + name_ + " --help)");
    return print_error(64, "unexpected extra argument (passwords are never accepted as arguments: use "
                           "--password-stdin or a terminal; see " + name_ + " --help)");
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    return print_error(64, msg + " (see " + name_ + " --help)");
  }
  if (!selected_) return print_error(64, "no command given (see " + name_ + " --help)");
  try {
    Result r = selected_();
    if (common_.json) {
      std::cout << json_text(r.data) << "\n";
    } else {
      if (!common_.quiet) std::cout << r.text;
      std::cout << r.essential;
    }
    std::cout.flush();
    return r.exit_code;
  } catch (const spool::Error& e) {
    return print_error(e.exit_code(), e.what());
  } catch (const std::exception& e) {
    return print_error(1, e.what());
  }
}

} // namespace mh
