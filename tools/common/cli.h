// cli.h — what every mailhost tool shares: the common options (--spool, --json,
// --quiet, --version, accepted before or after the subcommand), the mapping of errors
// to exit codes (SPEC §9) and the single place output is printed. A subcommand is a
// function from its options to a Result; Tool::run() does the rest.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <spool/layout.h>

#include <functional>
#include <optional>
#include <string>

namespace mh {

struct CommonOptions {
  std::optional<std::string> spool;
  bool json = false;
  bool quiet = false;
};

// What a subcommand produced: one JSON document for --json, text for people.
struct Result {
  nlohmann::json data = nlohmann::json::object();
  std::string text;  // printed as is (add the trailing newline yourself)
  std::string essential; // printed even with --quiet (a generated password: it is shown once)
  int exit_code = 0; // non-zero for "ran fine but the answer is no" (report, auth-test)
};

class Tool {
public:
  Tool(std::string name, const std::string& description);

  CLI::App& app() { return app_; }
  const CommonOptions& common() const { return common_; }
  const std::string& name() const { return name_; }

  // Registers `action` to run when `sub` is selected (and parsing succeeded).
  void on(CLI::App* sub, std::function<Result()> action);

  // The spool layout for --spool/$MH_SPOOL; when root, switches to the spool owner.
  spool::Layout open_spool() const;

  int run(int argc, char** argv);

private:
  int print_error(int code, const std::string& message) const;

  std::string name_;
  CLI::App app_;
  CommonOptions common_;
  std::function<Result()> selected_;
};

// A subcommand group (like "mh-user domain") that requires one of its subcommands.
CLI::App* add_group(CLI::App& parent, const std::string& name, const std::string& description);

} // namespace mh
