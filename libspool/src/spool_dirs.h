// spool_dirs.h — libspool-internal: the directories of domains, accounts and lists, made
// and removed so that a crash leaves the old tree or the new one, never half of one. A
// tree is built under ".new-<name><suffix>" beside its place and renamed into it; it is
// removed by renaming it to ".deleted-<name><suffix>" first. Whatever a crash left of
// either, and the temp files of killed writers (atomic_file.h), is swept by the next
// caller holding the lock that every creator, deleter or writer there holds. Paths come
// from Layout; errors are spool::Error.
#pragma once

#include "spool/layout.h"
#include "spool/names.h"

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace spool::detail {

void make_dir(const std::filesystem::path& p, mode_t mode = 0750);

// Whether `p` is a directory, not following a symlink. Missing is "no"; any other
// failure (EACCES...) is an error, not "no such domain" (or account, or list).
bool is_directory_nofollow(const std::filesystem::path& p);

// Error(no_domain) unless the domain's directory exists (domain.yaml's path is checked
// for symlinks first).
void require_domain(const Layout& layout, const Domain& domain);

// Removes the ".new-*" and ".deleted-*" directories in `dir`. Callers hold the lock that
// every creator/deleter of `dir`'s entries holds, so none is in progress.
void sweep_leftovers(const std::filesystem::path& dir);

// Removes the temp files of `file` (".<name>.tmp.<pid>...") that a writer killed between
// create and rename left behind. Callers hold the lock every writer of `file` holds.
void sweep_temp_files(const std::filesystem::path& file);

// Moves a fully built temp directory into place; EEXIST/ENOTEMPTY → Error(exists) saying
// "`what` already exists".
void publish_dir(const std::filesystem::path& built, const std::filesystem::path& target, const std::string& what);

// Renames `dir` out of the way, makes that durable, then removes it.
void remove_tree_atomically(const std::filesystem::path& dir);

} // namespace spool::detail
