// maildir.h — Maildir per maildir.5 (tmp/ new/ cur/) plus Maildir++ maildirsize.
// This is the mail store's entry point; creation and "holds mail" are used by
// provisioning, delivery/listing/removal build on the same files.
#pragma once

#include <cstdint>
#include <filesystem>

namespace spool {

// Creates dir with tmp/, new/, cur/ (mode 0700) and an empty maildirsize whose quota
// line carries `quota_bytes` (0 = no per-mailbox limit). Fails if dir exists.
void create_maildir(const std::filesystem::path& dir, std::uint64_t quota_bytes = 0);

// True when new/ or cur/ holds at least one message (dot files are not messages).
bool maildir_holds_mail(const std::filesystem::path& dir);

} // namespace spool
