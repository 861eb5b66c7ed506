// line_reader.cc — command line framing with a fixed upper bound on buffered bytes.
#include "smtp/line_reader.h"

namespace mh::smtp {

LineReader::Result LineReader::next(std::string_view in) {
  if (line_done_) {            // the previous result's view pointed into line_
    line_.clear();
    line_done_ = false;
  }
  Result r;
  const std::size_t lf = in.find('\n');
  const std::string_view chunk = in.substr(0, lf == std::string_view::npos ? in.size() : lf);
  if (!overlong_) {
    if (line_.size() + chunk.size() + 1 > limit_) {  // +1: the LF
      overlong_ = true;
      line_.clear();
    } else {
      line_.append(chunk);
    }
  }
  if (lf == std::string_view::npos) {
    r.consumed = in.size();
    return r;
  }
  r.consumed = lf + 1;
  line_done_ = true;
  if (overlong_) {
    overlong_ = false;
    r.status = Status::too_long;
    return r;
  }
  std::string_view line = line_;
  const bool ends_with_cr = !line.empty() && line.back() == '\r';
  if (!ends_with_cr || line.substr(0, line.size() - 1).find('\r') != std::string_view::npos) {
    r.status = Status::bare_line_ending;
    return r;
  }
  line.remove_suffix(1);
  r.status = Status::line;
  r.line = line;
  return r;
}

} // namespace mh::smtp
