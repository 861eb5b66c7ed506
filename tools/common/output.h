// output.h — small helpers for human-readable tables.
#pragma once

#include <string>
#include <vector>

namespace mh {

// Left-aligned columns separated by two spaces; the first row is the header.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// "key: value" lines with the keys padded to one width.
std::string format_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// Display width of UTF-8 text (East Asian wide characters count 2).
std::size_t display_width(const std::string& utf8);

} // namespace mh
