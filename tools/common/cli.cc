// cli.cc — common options, error → exit code, output.
#include "common/cli.h"

#include <spool/error.h>
#include <spool/owner.h>

#include <iostream>

namespace mh {

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
    std::cout << doc.dump(2) << "\n";
  }
  return code;
}

int Tool::run(int argc, char** argv) {
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
      std::cout << r.data.dump(2) << "\n";
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
