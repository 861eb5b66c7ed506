// spool_yaml.cc — libFuzzer target over libspool's strict YAML loaders (config.h, filters.h,
// mlist.h): the first input byte picks account.yaml, domain.yaml, mailhost.yaml,
// filters.yaml or list.yaml, the rest is the file. It is written into a private spool under
// /dev/shm (made once per process) and loaded. The loaders' contract is "load, or throw
// spool::Error(bad_config)" (exit 78); any other error code or exception type, an abort
// or a sanitizer report is a finding. Build and run: README.md here.
#include <spool/config.h>
#include <spool/error.h>
#include <spool/filters.h>
#include <spool/layout.h>
#include <spool/mlist.h>
#include <spool/names.h>


#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;

namespace {

// A spool with the domain fuzz.test and the list l@fuzz.test, so read_list() reaches
// list.yaml; removed when the process exits.
struct ScratchSpool {
  fs::path root;
  spool::Address account = spool::Address::parse("alice@fuzz.test");
  spool::Address list = spool::Address::parse("l@fuzz.test");

  ScratchSpool() {
    char tmpl[] = "/dev/shm/mh-fuzz-yaml-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::perror("spool_yaml: mkdtemp /dev/shm/mh-fuzz-yaml-XXXXXX");
      std::abort();
    }
    root = tmpl;
    const spool::Layout layout(root);
    fs::create_directories(layout.list_dir(list));
    fs::create_directories(layout.account_dir(account));
    write(layout.domain_config(list.domain()), "created: 2026-11-28T03:40:00Z\nstate: active\n");
  }
  ~ScratchSpool() {
    std::error_code ignored;
    fs::remove_all(root, ignored);
  }

  // Each load sees a new inode (temp file + rename), so the loaders' parse caches, keyed
  // by file identity, never answer for an earlier input.
  static void write(const fs::path& file, std::string_view text) {
    const fs::path temp = file.string() + ".new";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::close(fd) != 0 ||
        ::rename(temp.c_str(), file.c_str()) != 0) {
      std::perror(("spool_yaml: writing " + file.string()).c_str());
      std::abort();
    }
  }
};

void load(std::uint8_t which, std::string_view text) {
  static ScratchSpool s;
  const spool::Layout layout(s.root);
  switch (which % 5) {
  case 0:
    ScratchSpool::write(layout.account_config(s.account), text);
    (void)spool::load_account_config(layout.account_config(s.account));
    break;
  case 1:
    ScratchSpool::write(s.root / "domain.yaml", text);
    (void)spool::load_domain_config(s.root / "domain.yaml");
    break;
  case 2:
    ScratchSpool::write(s.root / "mailhost.yaml", text);
    (void)spool::load_server_config(s.root / "mailhost.yaml");
    break;
  case 3:
    ScratchSpool::write(layout.filters_config(s.account), text);
    (void)spool::load_filter_config(layout.filters_config(s.account), s.account);
    break;
  default:
    ScratchSpool::write(layout.list_config(s.list), text);
    (void)spool::read_list(layout, s.list);
    break;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    load(data[0], text);
  } catch (const spool::Error& e) {
    if (e.code() != spool::Errc::bad_config) {
      std::fprintf(stderr, "spool_yaml: error code %d, not bad_config (78): %s\n", e.exit_code(), e.what());
      std::abort();
    }
  }
  // Any other exception escapes: libFuzzer reports it as a crash (std::terminate).
  return 0;
}
