// inspection.cc — the MIME walk (GMime 3), per-part scanning, and the byte-range edits
// that clean a message. GMime parses with the input kept as its backing stream, so every
// part knows its byte offsets; a removal cuts exactly one part's delimiter line, headers
// and body, and everything else is copied as it came. Where the bytes do not look the
// way the parse says (a delimiter not where expected), the message is not cleanable and
// is refused rather than delivered half-cleaned.
#include "content/inspection.h"

#include "content/archive_limit.h"
#include "content/notice.h"

#include <gmime/gmime.h>
#include <unicode/uchar.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace mh::content {
namespace {

constexpr std::size_t read_block = 64 * 1024;
constexpr std::size_t max_file_name = 255;
constexpr unsigned whole_message_depth = 8;  // deeper MIME nesting is scanned part by part

void ensure_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

template <class T>
struct GObjectRef {
  T* p = nullptr;
  explicit GObjectRef(T* ptr) : p(ptr) {}
  GObjectRef(const GObjectRef&) = delete;
  GObjectRef& operator=(const GObjectRef&) = delete;
  ~GObjectRef() {
    if (p) g_object_unref(p);
  }
};

// Thrown inside the walk to stop it with a verdict.
struct Stop {
  Inspection::Verdict verdict;
  std::string detail;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing past U+10FFFF), 0 when invalid.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F) || (c == 0xF0 && b(1) < 0x90) ||
      (c == 0xF4 && b(1) > 0x8F))
    return 0;
  return n;
}

// Default-ignorable code points (bidi overrides, zero-width joiners, soft hyphens): a
// name could hide its real extension behind U+202E, and charset converters drop them.
bool invisible(std::string_view sequence) {
  const auto b = [&](std::size_t k) { return static_cast<UChar32>(static_cast<unsigned char>(sequence[k])); };
  UChar32 cp = 0;
  if (sequence.size() == 2) cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
  else if (sequence.size() == 3) cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  else cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  return u_hasBinaryProperty(cp, UCHAR_DEFAULT_IGNORABLE_CODE_POINT);
}

// A file name fit for a notice line and the log: valid UTF-8 (an invalid byte becomes
// '?'), C0, DEL and C1 controls become spaces, invisible characters are dropped, and it
// is cut at 255 bytes on a character boundary.
std::string tidy_file_name(const char* name) {
  if (!name) return {};
  const std::string_view in(name);
  std::string out;
  for (std::size_t i = 0; i < in.size();) {
    const std::size_t n = utf8_sequence(in, i);
    std::string_view piece = n == 0 ? std::string_view("?") : in.substr(i, n);
    const auto c = static_cast<unsigned char>(in[i]);
    const bool control = (n == 1 && (c < 0x20 || c == 0x7f)) ||
                         (n == 2 && c == 0xC2 && static_cast<unsigned char>(in[i + 1]) < 0xA0);
    if (control) piece = " ";
    else if (n > 1 && invisible(in.substr(i, n))) piece = {};
    if (out.size() + piece.size() > max_file_name) break;
    out += piece;
    i += n == 0 ? 1 : n;
  }
  return out;
}

std::string media_type(GMimeObject* o) {
  GMimeContentType* ct = g_mime_object_get_content_type(o);
  if (!ct) return "application/octet-stream";
  const char* t = g_mime_content_type_get_media_type(ct);
  const char* s = g_mime_content_type_get_media_subtype(ct);
  return lower(std::string(t ? t : "application") + "/" + (s ? s : "octet-stream"));
}

// A header field's bytes [start, end) in the message, checked against GMime's raw value.
struct Field {
  std::string name;   // lower case
  std::uint64_t start = 0, end = 0;
};

std::vector<Field> fields_of(std::string_view data, GMimeObject* o) {
  std::vector<Field> out;
  GMimeHeaderList* list = g_mime_object_get_header_list(o);
  const int n = list ? g_mime_header_list_get_count(list) : 0;
  for (int i = 0; i < n; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const gint64 off = g_mime_header_get_offset(h);
    const char* raw = g_mime_header_get_raw_value(h);
    if (off < 0 || !raw || static_cast<std::uint64_t>(off) >= data.size()) continue;
    const auto colon = data.find(':', static_cast<std::size_t>(off));
    const std::size_t raw_len = std::strlen(raw);
    if (colon == std::string_view::npos || data.substr(colon + 1, raw_len) != raw) continue;
    out.push_back({lower(g_mime_header_get_name(h)), static_cast<std::uint64_t>(off), colon + 1 + raw_len});
  }
  return out;
}

// The decoded bytes of a part, pulled in blocks through GMime's decoding filter.
class Decoded {
public:
  explicit Decoded(GMimePart* part) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (!content) return;
    GMimeStream* raw = g_mime_data_wrapper_get_stream(content);
    if (!raw) return;
    GMimeStream* sub = g_mime_stream_substream(raw, raw->bound_start, raw->bound_end);
    GMimeStream* filtered = g_mime_stream_filter_new(sub);
    g_object_unref(sub);
    GMimeFilter* decoder = g_mime_filter_basic_new(g_mime_data_wrapper_get_encoding(content), FALSE);
    g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), decoder);
    g_object_unref(decoder);
    stream_ = filtered;
  }
  Decoded(const Decoded&) = delete;
  Decoded& operator=(const Decoded&) = delete;
  ~Decoded() {
    if (stream_) g_object_unref(stream_);
  }
  std::size_t read(char* buffer, std::size_t capacity) {
    if (!stream_) return 0;
    for (;;) {
      const gssize n = g_mime_stream_read(stream_, buffer, capacity);
      if (n > 0) return static_cast<std::size_t>(n);
      if (n < 0) throw std::runtime_error("cannot decode a MIME part");
      if (g_mime_stream_eos(stream_)) return 0;
    }
  }
  std::string all() {
    std::string out;
    char buf[read_block];
    for (std::size_t n; (n = read(buf, sizeof buf)) > 0;) out.append(buf, n);
    return out;
  }

private:
  GMimeStream* stream_ = nullptr;
};

struct Leaf {
  GMimePart* part = nullptr;
  GMimeMultipart* parent = nullptr;   // null: the body of a message (top or attached)
  GMimeObject* message = nullptr;     // that message, when parent is null
  bool top_message = false;           // that message is the one being inspected
  bool attached = false;              // inside an attached message/rfc822
  std::uint64_t begin = 0;            // first byte of the part (its first header, else its blank line)
  std::uint64_t content_start = 0, content_end = 0;
  bool has_content = false;           // a part whose headers end the message or meet a boundary has none
  std::optional<Finding> finding;
};

class Walk {
public:
  // `measure`: archives are measured; `scan`: each part goes to the scanner.
  Walk(std::string_view data, VirusScanner& scanner, const ContentLimits& limits, Inspection& out, bool measure,
       bool scan)
      : data_(data), scanner_(scanner), limits_(limits), out_(out), measure_(measure), scan_(scan) {}

  void object(GMimeObject* o, GMimeMultipart* parent, GMimeObject* message, bool top, bool attached, unsigned depth) {
    if (depth > limits_.mime_depth)
      throw Stop{Inspection::Verdict::rejected, "MIME nesting deeper than " + std::to_string(limits_.mime_depth)};
    if (GMIME_IS_MULTIPART(o)) {
      GMimeMultipart* mp = GMIME_MULTIPART(o);
      const int n = g_mime_multipart_get_count(mp);
      for (int i = 0; i < n; ++i) object(g_mime_multipart_get_part(mp, i), mp, nullptr, false, attached, depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(o)) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
      if (inner && g_mime_message_get_mime_part(inner))
        object(g_mime_message_get_mime_part(inner), nullptr, GMIME_OBJECT(inner), false, true, depth + 1);
    } else if (GMIME_IS_PART(o)) {
      leaf(GMIME_PART(o), parent, message, top, attached);
    }
  }

  std::vector<Leaf>& leaves() { return leaves_; }

private:
  void leaf(GMimePart* part, GMimeMultipart* parent, GMimeObject* message, bool top, bool attached) {
    if (++out_.parts_scanned > limits_.mime_parts)
      throw Stop{Inspection::Verdict::rejected, "more than " + std::to_string(limits_.mime_parts) + " MIME parts"};
    Leaf l;
    l.part = part;
    l.parent = parent;
    l.message = message;
    l.top_message = top;
    l.attached = attached;
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    GMimeStream* raw = content ? g_mime_data_wrapper_get_stream(content) : nullptr;
    if (raw) {
      l.has_content = true;
      l.content_start = static_cast<std::uint64_t>(std::max<gint64>(raw->bound_start, 0));
      l.content_end = raw->bound_end < 0 ? data_.size() : static_cast<std::uint64_t>(raw->bound_end);
    } else {
      for (const Field& f : fields_of(data_, GMIME_OBJECT(part))) l.content_start = std::max(l.content_start, f.end);
      l.content_end = l.content_start;
    }
    l.begin = part_begin(GMIME_OBJECT(part), l.content_start);
    if (measure_) measure_archives(l);
    if (scan_) scan(l);
    leaves_.push_back(std::move(l));
  }

  std::uint64_t part_begin(GMimeObject* o, std::uint64_t content_start) const {
    std::uint64_t begin = content_start;
    for (const Field& f : fields_of(data_, o)) begin = std::min(begin, f.start);
    if (begin == content_start) {  // no headers: the part starts with its blank line
      if (begin >= 2 && data_.substr(begin - 2, 2) == "\r\n") begin -= 2;
      else if (begin >= 1 && data_[begin - 1] == '\n') begin -= 1;
    }
    return begin;
  }

  void measure_archives(const Leaf& l) {
    {
      Decoded peek(l.part);
      char head[512];
      std::size_t have = 0;
      for (std::size_t n; have < sizeof head && (n = peek.read(head + have, sizeof head - have)) > 0;) have += n;
      if (!looks_like_archive(std::string_view(head, have))) return;
    }
    const std::uint64_t used = std::max<std::uint64_t>(out_.expanded_bytes, data_.size());
    const std::uint64_t budget = limits_.expanded_content > used ? limits_.expanded_content - used : 0;
    Decoded decoded(l.part);
    const ArchiveMeasure m = measure_archive([&](char* b, std::size_t n) { return decoded.read(b, n); }, budget,
                                             limits_.archive_depth);
    out_.expanded_bytes = used + m.expanded;
    if (m.too_big || m.too_deep) throw Stop{Inspection::Verdict::rejected, m.detail};
  }

  void scan(Leaf& l) {
    Decoded decoded(l.part);
    ScanVerdict v = scanner_.scan([&](char* b, std::size_t n) { return decoded.read(b, n); });
    if (v.kind == ScanVerdict::Kind::failed) throw Stop{Inspection::Verdict::failed, v.detail};
    if (v.kind == ScanVerdict::Kind::infected) {
      Finding f;
      f.virus = v.virus;
      f.file_name = tidy_file_name(g_mime_part_get_filename(l.part));
      f.content_type = media_type(GMIME_OBJECT(l.part));
      l.finding = std::move(f);
    }
  }

  std::string_view data_;
  VirusScanner& scanner_;
  const ContentLimits& limits_;
  Inspection& out_;
  bool measure_, scan_;
  std::vector<Leaf> leaves_;
};

// --- cleaning -------------------------------------------------------------------------

class Cleaner {
public:
  Cleaner(std::string_view data, GMimeMessage* message, std::vector<Leaf>& leaves, Inspection& out)
      : data_(data), message_(message), leaves_(leaves), out_(out) {}

  // False when the message cannot be cleaned exactly.
  bool run() {
    for (const Leaf& l : leaves_)
      if (l.finding) out_.findings.push_back(*l.finding);
    bool notice_placed = false;
    for (const Leaf& l : leaves_) {
      if (!l.finding) continue;
      if (l.parent) {
        if (!remove_from_multipart(l)) return false;
      } else {
        if (!replace_body_with_notice(l, l.top_message ? out_.findings : std::vector<Finding>{*l.finding}))
          return false;
        notice_placed = notice_placed || l.top_message;
      }
    }
    if (!notice_placed && !place_notice()) return false;
    std::sort(out_.edits.begin(), out_.edits.end(),
              [](const Edit& a, const Edit& b) { return a.offset != b.offset ? a.offset < b.offset : a.length < b.length; });
    for (std::size_t i = 1; i < out_.edits.size(); ++i)
      if (out_.edits[i - 1].offset + out_.edits[i - 1].length > out_.edits[i].offset) return false;
    return true;
  }

private:
  std::string_view eol_at(std::uint64_t pos) const {
    const auto lf = data_.find('\n', pos);
    if (lf == std::string_view::npos) {
      const auto any = data_.find('\n');
      return any != std::string_view::npos && any > 0 && data_[any - 1] == '\r' ? "\r\n" : "\n";
    }
    return lf > 0 && data_[lf - 1] == '\r' ? "\r\n" : "\n";
  }

  // Start of the delimiter line ("--boundary") that ends right before `begin`.
  std::optional<std::uint64_t> delimiter_before(std::uint64_t begin, const std::string& boundary) const {
    if (begin == 0 || data_[begin - 1] != '\n') return std::nullopt;
    const auto prev = begin >= 2 ? data_.rfind('\n', begin - 2) : std::string_view::npos;
    const std::uint64_t line = prev == std::string_view::npos ? 0 : prev + 1;
    if (!starts_with(data_.substr(line), "--" + boundary)) return std::nullopt;
    return line;
  }

  // Start of the delimiter line that follows a part's content.
  std::optional<std::uint64_t> delimiter_after(std::uint64_t content_end, const std::string& boundary) const {
    std::uint64_t at = content_end;
    if (data_.substr(at, 2) == "\r\n") at += 2;
    else if (data_.substr(at, 1) == "\n") at += 1;
    else return std::nullopt;
    if (!starts_with(data_.substr(at), "--" + boundary)) return std::nullopt;
    return at;
  }

  bool remove_from_multipart(const Leaf& l) {
    const char* b = g_mime_multipart_get_boundary(l.parent);
    if (!b || !l.has_content) return false;
    const auto from = delimiter_before(l.begin, b);
    const auto to = delimiter_after(l.content_end, b);
    if (!from || !to || *to < *from) return false;
    out_.edits.push_back({*from, *to - *from, {}});
    return true;
  }

  std::string notice_text(const std::vector<Finding>& findings, std::string_view eol) const {
    std::string text;
    for (const Finding& f : findings)
      for (const std::string& line : notice_lines(f)) text += line + std::string(eol);
    return text;
  }

  // The leaf that is a message's whole body becomes a text/plain UTF-8 body holding the notice.
  bool replace_body_with_notice(const Leaf& l, const std::vector<Finding>& findings) {
    const std::string_view eol = eol_at(l.content_start > 0 ? l.content_start - 1 : 0);
    const std::string content_headers = "Content-Type: text/plain; charset=UTF-8" + std::string(eol) +
                                        "Content-Transfer-Encoding: base64" + std::string(eol);
    const std::uint64_t blank = blank_line_start(l);
    if (l.top_message) {
      // The whole header block is written again from its fields: a line that is no field
      // (GMime skips it) must not carry the removed bytes through.
      std::vector<Field> fields = fields_of(data_, GMIME_OBJECT(message_));
      for (Field& f : fields_of(data_, GMIME_OBJECT(l.part))) fields.push_back(std::move(f));
      std::sort(fields.begin(), fields.end(), [](const Field& a, const Field& b) { return a.start < b.start; });
      std::string headers;
      bool has_version = false;
      for (const Field& f : fields) {
        if (f.end > blank || starts_with(f.name, "content-")) continue;
        has_version = has_version || f.name == "mime-version";
        headers += data_.substr(f.start, f.end - f.start);
      }
      if (!has_version) headers += "MIME-Version: 1.0" + std::string(eol);
      out_.edits.push_back({0, blank, headers + content_headers});
    } else {
      for (const Field& f : fields_of(data_, GMIME_OBJECT(l.part)))
        if (starts_with(f.name, "content-")) out_.edits.push_back({f.start, f.end - f.start, {}});
      out_.edits.push_back({blank, 0, content_headers});
    }
    std::string body = encode_base64_lines(notice_text(findings, eol), eol);
    if (l.content_end < data_.size()) body.resize(body.size() - eol.size());  // the next delimiter brings its own
    out_.edits.push_back({l.content_start, l.content_end - l.content_start, body});
    return true;
  }

  std::uint64_t blank_line_start(const Leaf& l) const {
    std::uint64_t s = l.content_start;
    if (s >= 2 && data_.substr(s - 2, 2) == "\r\n") return s - 2;
    if (s >= 1 && data_[s - 1] == '\n') return s - 1;
    return s;
  }

  static bool usable_text(const Leaf& l) {
    if (l.finding || l.attached || !l.has_content) return false;
    if (media_type(GMIME_OBJECT(l.part)) != "text/plain") return false;
    const char* disposition = g_mime_object_get_disposition(GMIME_OBJECT(l.part));
    if (disposition && lower(disposition) == "attachment") return false;
    switch (g_mime_part_get_content_encoding(l.part)) {
    case GMIME_CONTENT_ENCODING_DEFAULT:
    case GMIME_CONTENT_ENCODING_7BIT:
    case GMIME_CONTENT_ENCODING_8BIT:
    case GMIME_CONTENT_ENCODING_BINARY:
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
    case GMIME_CONTENT_ENCODING_BASE64:
      return true;
    default:
      return false;
    }
  }

  bool place_notice() {
    for (const Leaf& l : leaves_)
      if (usable_text(l) && add_to_text_part(l)) return true;
    return add_notice_part();
  }

  static bool seven_bit(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  }

  static std::string decoded_content(const Leaf& l) { return Decoded(l.part).all(); }

  // Content re-encoded in `encoding`; the part's original trailing line end is not
  // repeated before a delimiter that brings its own.
  std::string encode_content(std::string_view bytes, GMimeContentEncoding encoding, std::string_view eol,
                             const Leaf& l) const {
    std::string out;
    if (encoding == GMIME_CONTENT_ENCODING_BASE64) out = encode_base64_lines(bytes, eol);
    else if (encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) out = encode_quoted_printable(bytes, eol);
    else return std::string(bytes);
    if (encoding == GMIME_CONTENT_ENCODING_BASE64 && l.content_end < data_.size() && out.size() >= eol.size())
      out.resize(out.size() - eol.size());
    return out;
  }

  bool add_to_text_part(const Leaf& l) {
    const std::string_view eol = eol_at(l.content_start);
    const std::string notice = notice_text(out_.findings, eol) + std::string(eol);
    const char* declared = g_mime_object_get_content_type_parameter(GMIME_OBJECT(l.part), "charset");
    const std::string charset = declared ? declared : "US-ASCII";
    const GMimeContentEncoding encoding = g_mime_part_get_content_encoding(l.part);
    const bool seven = encoding == GMIME_CONTENT_ENCODING_DEFAULT || encoding == GMIME_CONTENT_ENCODING_7BIT;
    if (const auto in_charset = encode_charset(notice, charset); in_charset && (!seven || seven_bit(*in_charset))) {
      if (encoding == GMIME_CONTENT_ENCODING_BASE64) {
        const std::string whole = *in_charset + decoded_content(l);
        out_.edits.push_back({l.content_start, l.content_end - l.content_start, encode_content(whole, encoding, eol, l)});
      } else if (encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        out_.edits.push_back({l.content_start, 0, encode_quoted_printable(*in_charset, eol)});
      } else {
        out_.edits.push_back({l.content_start, 0, *in_charset});
      }
      return true;
    }
    // The charset cannot carry the notice: the text moves to UTF-8.
    const auto text = decode_charset(decoded_content(l), charset);
    if (!text) return false;
    const GMimeContentEncoding target = seven ? GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE : encoding;
    out_.edits.push_back({l.content_start, l.content_end - l.content_start, encode_content(notice + *text, target, eol, l)});
    return relabel_utf8(l, target != encoding, eol);
  }

  // Content-Type gets charset=UTF-8; Content-Transfer-Encoding becomes quoted-printable
  // when `to_qp`. Fields are rewritten in place or added before the blank line.
  bool relabel_utf8(const Leaf& l, bool to_qp, std::string_view eol) {
    std::string added;
    bool has_type = false, has_cte = false;
    for (const Field& f : fields_of(data_, GMIME_OBJECT(l.part))) {
      if (f.name == "content-type") {
        has_type = true;
        out_.edits.push_back({f.start, f.end - f.start, with_utf8_charset(data_.substr(f.start, f.end - f.start), eol)});
      } else if (f.name == "content-transfer-encoding" && to_qp) {
        has_cte = true;
        out_.edits.push_back({f.start, f.end - f.start, "Content-Transfer-Encoding: quoted-printable" + std::string(eol)});
      }
    }
    if (l.top_message && !has_type) {
      bool has_version = false;
      for (const Field& f : fields_of(data_, GMIME_OBJECT(message_))) has_version = has_version || f.name == "mime-version";
      if (!has_version) added += "MIME-Version: 1.0" + std::string(eol);
    }
    if (!has_type) added += "Content-Type: text/plain; charset=UTF-8" + std::string(eol);
    if (to_qp && !has_cte) added += "Content-Transfer-Encoding: quoted-printable" + std::string(eol);
    if (!added.empty()) out_.edits.push_back({blank_line_start(l), 0, added});
    return true;
  }

  // The field with its charset parameter set to UTF-8 (or one appended).
  static std::string with_utf8_charset(std::string_view field, std::string_view eol) {
    std::string f(field);
    while (!f.empty() && (f.back() == '\n' || f.back() == '\r')) f.pop_back();
    const std::string low = lower(f);
    std::size_t at = low.find("charset");
    while (at != std::string::npos) {
      std::size_t p = at + 7;
      while (p < f.size() && (f[p] == ' ' || f[p] == '\t')) ++p;
      if (p < f.size() && f[p] == '=' && (at == 0 || low[at - 1] == ';' || low[at - 1] == ' ' || low[at - 1] == '\t')) {
        ++p;
        while (p < f.size() && (f[p] == ' ' || f[p] == '\t')) ++p;
        std::size_t end = p;
        if (end < f.size() && f[end] == '"') {
          end = f.find('"', end + 1);
          end = end == std::string::npos ? f.size() : end + 1;
        } else {
          while (end < f.size() && f[end] != ';' && f[end] != ' ' && f[end] != '\t' && f[end] != '\r' && f[end] != '\n') ++end;
        }
        return f.substr(0, p) + "UTF-8" + f.substr(end) + std::string(eol);
      }
      at = low.find("charset", at + 7);
    }
    return f + "; charset=UTF-8" + std::string(eol);
  }

  // No text part to write in: a new first part of the top multipart.
  bool add_notice_part() {
    GMimeObject* top = g_mime_message_get_mime_part(message_);
    if (!top || !GMIME_IS_MULTIPART(top) || g_mime_multipart_get_count(GMIME_MULTIPART(top)) == 0) return false;
    GMimeMultipart* mp = GMIME_MULTIPART(top);
    const char* b = g_mime_multipart_get_boundary(mp);
    if (!b) return false;
    const Leaf* first = nullptr;
    GMimeObject* first_child = g_mime_multipart_get_part(mp, 0);
    for (const Leaf& l : leaves_)
      if (GMIME_OBJECT(l.part) == first_child) first = &l;
    std::uint64_t begin = 0;
    if (first) {
      begin = first->begin;
    } else {
      const auto fields = fields_of(data_, first_child);
      if (fields.empty()) return false;
      begin = fields.front().start;
      for (const Field& f : fields) begin = std::min(begin, f.start);
    }
    const auto at = delimiter_before(begin, b);
    if (!at) return false;
    const std::string_view eol = eol_at(*at);
    std::string part = "--" + std::string(b) + std::string(eol) + "Content-Type: text/plain; charset=UTF-8" +
                       std::string(eol) + "Content-Transfer-Encoding: base64" + std::string(eol) + std::string(eol) +
                       encode_base64_lines(notice_text(out_.findings, eol), eol);
    out_.edits.push_back({*at, 0, part});
    return true;
  }

  std::string_view data_;
  GMimeMessage* message_;
  std::vector<Leaf>& leaves_;
  Inspection& out_;
};

// Counts leaf parts and checks nesting against the limits without decoding anything.
void count_parts(GMimeObject* o, const ContentLimits& limits, unsigned depth, std::uint64_t& leaves,
                 unsigned& deepest) {
  deepest = std::max(deepest, depth);
  if (depth > limits.mime_depth)
    throw Stop{Inspection::Verdict::rejected, "MIME nesting deeper than " + std::to_string(limits.mime_depth)};
  if (GMIME_IS_MULTIPART(o)) {
    GMimeMultipart* mp = GMIME_MULTIPART(o);
    const int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i) count_parts(g_mime_multipart_get_part(mp, i), limits, depth + 1, leaves, deepest);
  } else if (GMIME_IS_MESSAGE_PART(o)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
    if (inner && g_mime_message_get_mime_part(inner))
      count_parts(g_mime_message_get_mime_part(inner), limits, depth + 1, leaves, deepest);
  } else if (GMIME_IS_PART(o) && ++leaves > limits.mime_parts) {
    throw Stop{Inspection::Verdict::rejected, "more than " + std::to_string(limits.mime_parts) + " MIME parts"};
  }
}

// The message as it is, in blocks.
ScanVerdict scan_whole(VirusScanner& scanner, std::string_view message) {
  std::size_t pos = 0;
  return scanner.scan([&](char* b, std::size_t n) {
    const std::size_t k = std::min(n, message.size() - pos);
    std::memcpy(b, message.data() + pos, k);
    pos += k;
    return k;
  });
}

// A read-only GMime stream over `data` without copying it: a GByteArray header that
// points at the caller's bytes, never owned or grown (GMimeStreamMem reads only
// `data` and `len` when it does not own the array).
GMimeStream* borrowed_stream(std::string_view data, GByteArray& view) {
  view.data = reinterpret_cast<guint8*>(const_cast<char*>(data.data()));
  view.len = static_cast<guint>(data.size());
  GMimeStream* s = g_mime_stream_mem_new_with_byte_array(&view);
  g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
  return s;
}

} // namespace

Inspection inspect_message(std::string_view message, VirusScanner& scanner, const ContentLimits& limits) {
  ensure_gmime();
  Inspection out;
  out.expanded_bytes = message.size();
  if (message.size() > UINT_MAX / 2) {
    out.verdict = Inspection::Verdict::rejected;
    out.detail = "message too large to inspect";
    return out;
  }
  GByteArray view{};
  GObjectRef<GMimeStream> stream(borrowed_stream(message, view));
  GObjectRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.p));
  g_mime_parser_set_persist_stream(parser.p, TRUE);
  g_mime_parser_set_format(parser.p, GMIME_FORMAT_MESSAGE);
  GObjectRef<GMimeMessage> parsed(g_mime_parser_construct_message(parser.p, nullptr));
  if (!parsed.p || !g_mime_message_get_mime_part(parsed.p)) {
    // Not even a header block: scan the bytes as they are.
    const ScanVerdict v = scan_whole(scanner, message);
    out.parts_scanned = 1;
    if (v.kind == ScanVerdict::Kind::failed) {
      out.verdict = Inspection::Verdict::failed;
      out.detail = v.detail;
    } else if (v.kind == ScanVerdict::Kind::infected) {
      out.verdict = Inspection::Verdict::rejected;
      out.findings.push_back({v.virus, {}, "message"});
      out.detail = "infected (" + v.virus + ") and not MIME: cannot remove a part";
    }
    return out;
  }
  GMimeObject* top = g_mime_message_get_mime_part(parsed.p);
  unsigned deepest = 0;
  try {
    // The shape first, so a MIME bomb is refused before the scanner sees any of it.
    count_parts(top, limits, 0, out.parts_scanned, deepest);
  } catch (const Stop& stop) {
    out.verdict = stop.verdict;
    out.detail = stop.detail;
    return out;
  }
  out.parts_scanned = 0;
  // clamd's mail scanner stops descending at its MaxRecursion (16 in Debian's clamd.conf)
  // and then calls the rest clean: deeper messages are sent part by part.
  const bool whole_first = scanner.reads_mime() && deepest <= whole_message_depth;
  Walk walk(message, scanner, limits, out, true, !whole_first);
  Walk find(message, scanner, limits, out, false, true);  // whole_first: which parts are infected
  try {
    walk.object(top, nullptr, GMIME_OBJECT(parsed.p), true, false, 0);
    if (whole_first) {
      const ScanVerdict v = scan_whole(scanner, message);
      if (v.kind == ScanVerdict::Kind::failed) throw Stop{Inspection::Verdict::failed, v.detail};
      if (v.kind == ScanVerdict::Kind::clean) return out;
      out.parts_scanned = 0;
      find.object(top, nullptr, GMIME_OBJECT(parsed.p), true, false, 0);
      const auto& found = find.leaves();
      if (std::none_of(found.begin(), found.end(), [](const Leaf& l) { return l.finding.has_value(); }))
        throw Stop{Inspection::Verdict::rejected, v.virus + " found in the message but in none of its parts"};
    }
  } catch (const Stop& stop) {
    out.verdict = stop.verdict;
    out.detail = stop.detail;
    out.findings.clear();
    return out;
  }
  std::vector<Leaf>& leaves = whole_first ? find.leaves() : walk.leaves();
  const bool infected = std::any_of(leaves.begin(), leaves.end(), [](const Leaf& l) { return l.finding.has_value(); });
  if (!infected) return out;
  Cleaner cleaner(message, parsed.p, leaves, out);
  if (!cleaner.run()) {
    out.verdict = Inspection::Verdict::rejected;
    out.edits.clear();
    out.detail = "infected and not cleanable";
    return out;
  }
  out.verdict = Inspection::Verdict::cleaned;
  for (const Finding& f : out.findings)
    out.detail += (out.detail.empty() ? "" : ",") + f.virus + ":" + (f.file_name.empty() ? f.content_type : f.file_name);
  return out;
}

std::string decode_file_name(std::string_view content_disposition, std::string_view content_type) {
  ensure_gmime();
  const std::string cd(content_disposition), ct(content_type);
  if (!cd.empty()) {
    GObjectRef<GMimeContentDisposition> d(g_mime_content_disposition_parse(nullptr, cd.c_str()));
    if (d.p) {
      if (const char* name = g_mime_content_disposition_get_parameter(d.p, "filename"); name && *name)
        return tidy_file_name(name);
    }
  }
  if (!ct.empty()) {
    GObjectRef<GMimeContentType> t(g_mime_content_type_parse(nullptr, ct.c_str()));
    if (t.p) {
      if (const char* name = g_mime_content_type_get_parameter(t.p, "name"); name && *name) return tidy_file_name(name);
    }
  }
  return {};
}

void apply_edits(std::string_view message, const std::vector<Edit>& edits,
                 const std::function<void(std::string_view)>& out) {
  const auto copy = [&](std::string_view bytes) {
    for (std::size_t at = 0; at < bytes.size(); at += read_block) out(bytes.substr(at, read_block));
  };
  std::uint64_t pos = 0;
  for (const Edit& e : edits) {
    if (e.offset < pos || e.offset + e.length > message.size()) throw std::logic_error("overlapping or out-of-range edit");
    copy(message.substr(pos, e.offset - pos));
    copy(e.bytes);
    pos = e.offset + e.length;
  }
  copy(message.substr(pos));
}

} // namespace mh::content
