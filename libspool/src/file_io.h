// file_io.h — libspool-internal: the write path shared by Maildir delivery and the
// outbound queue: buffered appends to a tmp file, fsync with context, and the streamed
// copy used when a hard link would cross file systems.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace spool::detail {

inline constexpr std::size_t write_buffer_size = 64 * 1024;

// Appends `bytes` to `buffer`, writing the buffer to fd when it would grow past
// write_buffer_size; a piece that large goes straight to fd. Throws spool::Error on a
// failed write (a full disk): the caller then discards the file.
void buffered_write(int fd, std::string& buffer, std::string_view bytes, const std::filesystem::path& for_errors);
// Writes out and empties `buffer`; throws like buffered_write.
void flush_buffer(int fd, std::string& buffer, const std::filesystem::path& for_errors);
void fsync_or_throw(int fd, const std::filesystem::path& for_errors);
// Reads `in` to its end and writes everything to `out` (no fsync). Throws spool::Error.
void copy_contents(int in, const std::filesystem::path& source, int out, const std::filesystem::path& target);

} // namespace spool::detail
