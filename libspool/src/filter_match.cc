// filter_match.cc — SPEC §6 matching, no I/O: NFKC case folding through the dlopen'ed
// ICU (plain ASCII without it), a glob and a substring search linear in the field
// (bit-parallel Shift-And over code points, never backtracking), the header as the
// filters see it (fields indexed once, decoded and folded on first use, addr-specs taken
// out of address lists), and the order of the steps. Everything here reads a hostile
// message: every pass over a field or the header is linear, whatever its shape.
#include "spool/filter_match.h"

#include "spool/error.h"
#include "spool/header_decode.h"

#include "icu_runtime.h"
#include "text_util.h"

#include <algorithm>
#include <array>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

namespace spool {
namespace {

constexpr std::size_t npos = std::string_view::npos;

using detail::ascii_lowered;
using detail::iequals;
using detail::is_line_space;
using detail::is_wsp;
using detail::trimmed;
using detail::utf8_sequence;

std::int32_t icu_length(std::size_t n) { return static_cast<std::int32_t>(n); }

[[noreturn]] void icu_failed(const char* step, UErrorCode status) {
  throw Error(Errc::other, std::string("cannot fold text for filter matching (") + step +
                               "): " + detail::icu().error_name(status));
}

// --- units: what `?` and a search step over ---

// A code point, or an invalid byte as invalid_base + byte, so that it equals only itself
// (folded text has none, but glob_match() is public).
constexpr char32_t invalid_base = 0x110000;
constexpr char32_t any_unit = 0xFFFFFFFF; // `?` in a glob

// The unit at text[i] (i < size), advancing i past it. Strict UTF-8 (utf8_sequence).
char32_t next_unit(std::string_view text, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  const std::size_t n = utf8_sequence(text, i);
  if (n == 0) {
    ++i;
    return invalid_base + b0;
  }
  if (n == 1) {
    ++i;
    return b0;
  }
  char32_t cp = b0 & (0x7Fu >> n);  // the lead byte's payload: 5, 4 or 3 bits
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3Fu);
  i += n;
  return cp;
}

std::vector<char32_t> units_of(std::string_view text) {
  std::vector<char32_t> units;
  for (std::size_t i = 0; i < text.size();) units.push_back(next_unit(text, i));
  return units;
}

// A fixed-length run of units (`?` matching any one): a glob's piece between stars, or
// the whole TEXT of `contains`. Searched with Shift-And (Baeza-Yates & Gonnet 1992): bit
// k of the state says "the last k+1 units read match the first k+1 of the piece"; each
// text unit shifts the state and masks it with that unit's row. So a search costs
// O(text × ⌈piece/64⌉) whatever the input, and as the piece has a fixed length its
// leftmost match end is also its leftmost start, which is what a glob needs.
class Piece {
public:
  explicit Piece(std::vector<char32_t> units) : units_(std::move(units)), words_((units_.size() + 63) / 64) {
    ascii_rows_.fill(0);
    // Row 0 has the `?` positions only: the row of every unit the piece does not name.
    rows_.assign(words_, 0);
    for (std::size_t k = 0; k < units_.size(); ++k)
      if (units_[k] == any_unit) set_bit(0, k);
    std::vector<char32_t> distinct;
    for (char32_t u : units_)
      if (u != any_unit) distinct.push_back(u);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (char32_t c : distinct) {
      const auto row = static_cast<std::uint32_t>(rows_.size() / words_);
      rows_.insert(rows_.end(), rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(words_));
      for (std::size_t k = 0; k < units_.size(); ++k)
        if (units_[k] == c) set_bit(row, k);
      if (c < ascii_rows_.size()) ascii_rows_[c] = row;
      else other_rows_.emplace_back(c, row); // sorted, as `distinct` is
    }
  }

  // End of the piece matched exactly at text[pos], or npos.
  std::size_t match_at(std::string_view text, std::size_t pos) const {
    for (char32_t u : units_) {
      if (pos >= text.size()) return npos;
      const char32_t t = next_unit(text, pos);
      if (u != any_unit && u != t) return npos;
    }
    return pos;
  }

  // End of the leftmost match that starts at or after `from`, or npos.
  std::size_t find_end(std::string_view text, std::size_t from) const {
    if (units_.empty()) return from;
    std::vector<std::uint64_t> state(words_, 0);
    while (from < text.size())
      if (step(state, next_unit(text, from))) return from;
    return npos;
  }

  // Whether a match that starts at or after `from` ends where the text ends.
  bool ends_at_end(std::string_view text, std::size_t from) const {
    if (units_.empty()) return true;
    std::vector<std::uint64_t> state(words_, 0);
    bool matched = false;
    while (from < text.size()) matched = step(state, next_unit(text, from));
    return matched;
  }

private:
  void set_bit(std::size_t row, std::size_t k) { rows_[row * words_ + k / 64] |= std::uint64_t{1} << (k % 64); }

  const std::uint64_t* row_of(char32_t c) const {
    std::uint32_t row = 0;
    if (c < ascii_rows_.size()) {
      row = ascii_rows_[c];
    } else {
      auto it = std::lower_bound(other_rows_.begin(), other_rows_.end(), c,
                                 [](const auto& entry, char32_t key) { return entry.first < key; });
      if (it != other_rows_.end() && it->first == c) row = it->second;
    }
    return rows_.data() + row * words_;
  }

  // Reads one unit; true when a match of the whole piece ends with it.
  bool step(std::vector<std::uint64_t>& state, char32_t c) const {
    const std::uint64_t* mask = row_of(c);
    std::uint64_t carry = 1; // a match may begin at every unit
    for (std::size_t w = 0; w < words_; ++w) {
      const std::uint64_t out = state[w] >> 63;
      state[w] = ((state[w] << 1) | carry) & mask[w];
      carry = out;
    }
    const std::size_t last = units_.size() - 1;
    return (state[last / 64] >> (last % 64)) & 1;
  }

  std::vector<char32_t> units_;
  std::size_t words_;
  std::vector<std::uint64_t> rows_; // row r is rows_[r * words_ …]
  std::array<std::uint32_t, 128> ascii_rows_{};
  std::vector<std::pair<char32_t, std::uint32_t>> other_rows_;
};

// A glob split on `*`: the first piece is anchored at the start, the last at the end, the
// ones between are found leftmost-first. Greedy is exact here: taking the earliest match
// of a middle piece leaves the most text for the rest, and each scan starts where the
// previous one stopped, so the whole match reads the text about once (twice at worst:
// the last piece rescans from the previous end).
class Glob {
public:
  explicit Glob(std::string_view pattern) {
    std::vector<char32_t> units;
    for (std::size_t i = 0; i < pattern.size();) {
      const char32_t u = next_unit(pattern, i);
      if (u == '*') {
        pieces_.emplace_back(std::move(units));
        units.clear();
      } else {
        units.push_back(u == '?' ? any_unit : u);
      }
    }
    pieces_.emplace_back(std::move(units));
  }

  bool matches(std::string_view text) const {
    if (pieces_.size() == 1) return pieces_.front().match_at(text, 0) == text.size();
    std::size_t pos = pieces_.front().match_at(text, 0);
    for (std::size_t k = 1; pos != npos && k + 1 < pieces_.size(); ++k) pos = pieces_[k].find_end(text, pos);
    return pos != npos && pieces_.back().ends_at_end(text, pos);
  }

private:
  std::vector<Piece> pieces_;
};

// A condition's OP and folded TEXT, compiled once and tried on every value of a field.
class TextMatcher {
public:
  TextMatcher(Condition::Op op, std::string folded) : op_(op), text_(std::move(folded)) {
    if (op_ == Condition::Op::contains) piece_.emplace(units_of(text_));
    if (op_ == Condition::Op::matches) glob_.emplace(text_);
  }

  bool operator()(std::string_view folded_value) const {
    switch (op_) {
    case Condition::Op::is: return folded_value == text_;
    case Condition::Op::contains: return piece_->find_end(folded_value, 0) != npos;
    case Condition::Op::matches: return glob_->matches(folded_value);
    }
    return false;
  }

private:
  Condition::Op op_;
  std::string text_;
  std::optional<Piece> piece_;
  std::optional<Glob> glob_;
};

// --- addresses (RFC 5322 §3.4) ---

// Index past the comment opening at v[i] ('('): comments nest, '\' quotes a character.
// An unclosed comment runs to the end.
std::size_t skip_comment(std::string_view v, std::size_t i) {
  int depth = 0;
  for (; i < v.size(); ++i) {
    if (v[i] == '\\') ++i;
    else if (v[i] == '(') ++depth;
    else if (v[i] == ')' && --depth == 0) return i + 1;
  }
  return v.size();
}

// Index past the quoted string opening at v[i] ('"'); unclosed runs to the end.
std::size_t skip_quoted(std::string_view v, std::size_t i) {
  for (++i; i < v.size(); ++i) {
    if (v[i] == '\\') ++i;
    else if (v[i] == '"') return i + 1;
  }
  return v.size();
}

// The addr-specs of an address-list field, as written: `"Name, with comma" <a@b>` →
// a@b, `a@b (comment)` → a@b, `List: a@b, c@d;` → a@b c@d, `undisclosed-recipients:;`
// → nothing, obsolete routes `<@relay:a@b>` → a@b. Comments and white space are dropped;
// quoted local parts are kept with their quotes. One pass; never fails.
std::vector<std::string> address_specs(std::string_view v) {
  std::vector<std::string> out;
  std::string bare;  // the mailbox read so far outside <>: an addr-spec or a display name
  std::string angle; // the last <…> of this mailbox
  bool has_angle = false;
  const auto finish = [&] {
    if (has_angle) {
      // RFC 5322 §4.4 obs-route: "@relay,@relay:" before the address.
      if (!angle.empty() && angle.front() == '@') {
        const std::size_t colon = angle.find(':');
        angle.erase(0, colon == npos ? angle.size() : colon + 1);
      }
      if (!angle.empty()) out.push_back(angle);
    } else if (bare.find('@') != npos) {
      out.push_back(bare); // without <> a mailbox is just an addr-spec; a lone word is not one
    }
    bare.clear();
    angle.clear();
    has_angle = false;
  };
  std::size_t i = 0;
  while (i < v.size()) {
    const char c = v[i];
    if (c == '(') {
      i = skip_comment(v, i);
    } else if (c == '"') {
      const std::size_t end = skip_quoted(v, i);
      bare.append(v.substr(i, end - i));
      i = end;
    } else if (c == '<') {
      has_angle = true;
      angle.clear();
      for (++i; i < v.size() && v[i] != '>';) {
        if (v[i] == '(') {
          i = skip_comment(v, i);
        } else if (v[i] == '"') {
          const std::size_t end = skip_quoted(v, i);
          angle.append(v.substr(i, end - i));
          i = end;
        } else {
          if (!is_line_space(v[i])) angle += v[i];
          ++i;
        }
      }
      if (i < v.size()) ++i; // '>'
    } else if (c == ',' || c == ';') {
      finish(); // ';' ends a group, which also ends its last mailbox
      ++i;
    } else if (c == ':') {
      bare.clear(); // what came before was a group's display name
      angle.clear();
      has_angle = false;
      ++i;
    } else {
      if (!is_line_space(c)) bare += c;
      ++i;
    }
  }
  finish();
  return out;
}

std::string field_name_of(const Condition& condition) {
  switch (condition.field) {
  case Condition::Field::from: return "From";
  case Condition::Field::to: return "To";
  case Condition::Field::cc: return "Cc";
  case Condition::Field::subject: return "Subject";
  case Condition::Field::header: return condition.header_name;
  }
  return condition.header_name;
}

// RFC 5322 §3.6.8: a field name is printable ASCII except ':' (the first ':' ends it).
bool field_name_ok(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return false;
  return true;
}

// SPEC §6 loop check: the message already went through this account. The account is
// stored in A-labels; the field may carry the Unicode form of an IDN domain.
bool delivered_to_account(const Address& account, const FilterMessage& message) {
  const std::vector<std::string>& seen = message.folded_addresses("Delivered-To");
  if (seen.empty()) return false;
  std::vector<std::string> forms{fold_text(account.str())};
  if (account.domain().str().find("xn--") != std::string::npos)
    forms.push_back(fold_text(account.local().str() + "@" + account.domain().unicode()));
  for (const std::string& address : seen)
    if (std::find(forms.begin(), forms.end(), address) != forms.end()) return true;
  return false;
}

std::string looping(const Address& account) {
  return "looping: Delivered-To <" + account.str() + "> already present (5.4.6)";
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

} // namespace

std::string fold_text(std::string_view utf8) {
  // Most header fields are ASCII; NFKC_Casefold maps ASCII exactly to its lower case.
  if (std::all_of(utf8.begin(), utf8.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    return ascii_lowered(utf8);
  static_assert(max_fold_input * 3 < std::numeric_limits<std::int32_t>::max(), "ICU lengths are int32_t");
  if (utf8.size() > max_fold_input) utf8 = utf8.substr(0, max_fold_input);
  const auto& icu = detail::icu();
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* nfkc_cf = icu.nfkc_casefold_instance(&status); // owned by ICU
  if (U_FAILURE(status)) icu_failed("NFKC_Casefold data", status);

  // UTF-16 never has more units than the UTF-8 had bytes (an invalid byte → one U+FFFD).
  std::vector<UChar> utf16(utf8.size() + 1);
  std::int32_t utf16_length = 0;
  icu.utf8_to_utf16(utf16.data(), icu_length(utf16.size()), &utf16_length, utf8.data(), icu_length(utf8.size()),
                    0xFFFD, nullptr, &status);
  if (U_FAILURE(status)) icu_failed("UTF-8", status);

  // Folding may grow the text (ß → ss, ligatures, ㌀ → アパート): guess, then ask ICU.
  std::vector<UChar> folded(static_cast<std::size_t>(utf16_length) * 2 + 16);
  std::int32_t folded_length =
      icu.normalize(nfkc_cf, utf16.data(), utf16_length, folded.data(), icu_length(folded.size()), &status);
  if (status == U_BUFFER_OVERFLOW_ERROR) {
    folded.resize(static_cast<std::size_t>(folded_length) + 1);
    status = U_ZERO_ERROR;
    folded_length =
        icu.normalize(nfkc_cf, utf16.data(), utf16_length, folded.data(), icu_length(folded.size()), &status);
  }
  if (U_FAILURE(status)) icu_failed("normalization", status);

  std::string out(static_cast<std::size_t>(folded_length) * 3 + 1, '\0'); // ≤ 3 bytes per unit
  std::int32_t out_length = 0;
  icu.utf16_to_utf8(out.data(), icu_length(out.size()), &out_length, folded.data(), folded_length, &status);
  if (U_FAILURE(status)) icu_failed("UTF-16", status);
  out.resize(static_cast<std::size_t>(out_length));
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) { return Glob(pattern).matches(text); }

FilterMessage::FilterMessage(std::string head, std::uint64_t size, std::string sender)
    : header_(std::move(head)), size_(size), sender_(std::move(sender)) {
  if (header_.size() > max_filter_header_block) header_.resize(max_filter_header_block);
  header_.resize(spool::header_block(header_).size());
  // One pass: a line starting with a name and ':' opens a field, a line starting with
  // white space continues it (RFC 5322 §2.2.3), anything else (an mbox "From " line, a
  // line with no colon) is skipped and ends the field before it.
  const std::string_view h = header_;
  bool open = false;
  for (std::size_t pos = 0; pos < h.size();) {
    const std::size_t eol = h.find('\n', pos);
    std::size_t end = eol == npos ? h.size() : eol;
    const std::size_t next = eol == npos ? h.size() : eol + 1;
    if (end > pos && h[end - 1] == '\r') --end;
    const std::string_view line = h.substr(pos, end - pos);
    if (!line.empty() && is_wsp(line.front())) {
      if (open) fields_.back().value_len = end - fields_.back().value_pos;
    } else {
      open = false;
      const std::size_t colon = line.find(':');
      if (colon != npos) {
        std::string_view name = line.substr(0, colon);
        while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1); // RFC 5322 §4.5 "Subject :"
        if (field_name_ok(name)) {
          fields_.push_back({pos, name.size(), pos + colon + 1, end - (pos + colon + 1)});
          open = true;
        }
      }
    }
    pos = next;
  }
}

std::vector<std::string> FilterMessage::raw_fields(std::string_view name) const {
  std::vector<std::string> out;
  const std::string_view h = header_;
  for (const FieldSpan& f : fields_) {
    if (!iequals(h.substr(f.name_pos, f.name_len), name)) continue;
    const std::string unfolded = unfold_header(h.substr(f.value_pos, f.value_len));
    out.emplace_back(trimmed(unfolded));
  }
  return out;
}

const std::vector<std::string>& FilterMessage::folded_fields(std::string_view name) const {
  std::string key = ascii_lowered(name);
  for (const auto& [cached, values] : folded_cache_)
    if (cached == key) return values;
  std::vector<std::string> values;
  for (const std::string& raw : raw_fields(name)) values.push_back(fold_text(decode_header_value(raw)));
  return folded_cache_.emplace_back(std::move(key), std::move(values)).second;
}

const std::vector<std::string>& FilterMessage::folded_addresses(std::string_view name) const {
  std::string key = ascii_lowered(name);
  for (const auto& [cached, values] : address_cache_)
    if (cached == key) return values;
  std::vector<std::string> values;
  for (const std::string& raw : raw_fields(name))
    for (const std::string& spec : address_specs(raw)) values.push_back(fold_text(spec));
  return address_cache_.emplace_back(std::move(key), std::move(values)).second;
}

namespace {

// Conditions compiled once per thread (folding TEXT and building a glob's search tables
// cost more than matching a short header): every message to an account tries the same
// few conditions. Per thread, so delivery threads never wait on each other; bounded.
const TextMatcher& compiled(const Condition& condition) {
  thread_local std::unordered_map<std::string, std::unique_ptr<TextMatcher>> cache;
  std::string key(1, static_cast<char>('0' + static_cast<int>(condition.op)));
  key += condition.text;
  auto it = cache.find(key);
  if (it != cache.end()) return *it->second;
  if (cache.size() >= 4096) cache.clear();
  auto matcher = std::make_unique<TextMatcher>(condition.op, fold_text(condition.text));
  return *cache.emplace(std::move(key), std::move(matcher)).first->second;
}

} // namespace

bool condition_matches(const Condition& condition, const FilterMessage& message) {
  switch (condition.kind) {
  case Condition::Kind::all: return true;
  case Condition::Kind::size_over: return message.size() > condition.size;
  case Condition::Kind::field: break;
  }
  const TextMatcher& match = compiled(condition);
  const std::string name = field_name_of(condition);
  for (const std::string& value : message.folded_fields(name))
    if (match(value)) return true;
  // from/to/cc: also each address alone, so `from is boss@example.com` matches
  // `"Boss" <Boss@Example.com>`. `header NAME` compares whole fields only.
  if (condition.field == Condition::Field::from || condition.field == Condition::Field::to ||
      condition.field == Condition::Field::cc)
    for (const std::string& address : message.folded_addresses(name))
      if (match(address)) return true;
  return false;
}

std::string_view to_string(NoReplyReason reason) {
  switch (reason) {
  case NoReplyReason::none: return "";
  case NoReplyReason::null_sender: return "null sender";
  case NoReplyReason::mailer_daemon: return "mailer-daemon";
  case NoReplyReason::list_mail: return "list mail";
  case NoReplyReason::auto_submitted: return "auto-submitted";
  case NoReplyReason::not_addressed: return "not addressed to the account";
  case NoReplyReason::loop: return "loop";
  }
  return "";
}

FilterDecision evaluate_filters(const FilterConfig& config, const Address& account, const FilterMessage& message,
                                SpamVerdict verdict) {
  using Step = FilterDecision::Step;
  using Action = FilterDecision::Action;
  FilterDecision d;

  // 1. Spam (opt-in; an unknown verdict delivers untagged).
  if (config.spam.enabled && verdict == SpamVerdict::spam) {
    d.step = Step::spam;
    if (config.spam.action == SpamFilter::Action::tag) {
      d.action = Action::tag;
      d.detail = "spam: tagged \"" + config.spam.tag + "\"";
    } else {
      d.action = Action::discard;
      d.detail = "spam: delete";
    }
    return d;
  }

  // 2. Rules, in order.
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    const FilterRule& rule = config.rules[i];
    if (!condition_matches(rule.condition, message)) continue;
    const bool discard = rule.action == FilterRule::Action::discard;
    d.step = Step::rule;
    d.index = i;
    d.action = discard ? Action::discard : Action::bounce;
    d.detail = "rule " + std::to_string(i + 1) + " (" + rule.condition.str() + "): " + (discard ? "delete" : "bounce");
    return d;
  }

  // 3. Auto-reply: stored; forwards do not run. Only the loop is judged here (see header).
  if (config.autoreply.enabled) {
    d.step = Step::autoreply;
    d.action = Action::autoreply;
    if (delivered_to_account(account, message)) {
      d.loop = true;
      d.no_reply = NoReplyReason::loop;
      d.detail = "auto-reply: stored, not answered: " + looping(account);
    } else {
      d.detail = "auto-reply: stored and answered unless RFC 3834 forbids it (each sender at most once per " +
                 std::to_string(config.autoreply.days) + " days)";
    }
    return d;
  }

  // 4. Forward profiles: the first that matches (an `all` profile ends the list).
  for (std::size_t i = 0; i < config.forwards.size(); ++i) {
    const ForwardProfile& profile = config.forwards[i];
    if (!condition_matches(profile.condition, message)) continue;
    d.step = Step::forward;
    d.index = i;
    const std::string head = "forward profile " + std::to_string(i + 1) + " (" + profile.condition.str() + "): ";
    if (delivered_to_account(account, message)) {
      // Keep the local copy so that stopping the loop loses nothing.
      d.loop = true;
      d.action = Action::deliver;
      d.keep = true;
      d.detail = head + looping(account) + ": stored, not forwarded";
    } else {
      d.action = Action::forward;
      d.destinations = profile.destinations;
      d.keep = profile.keep;
      d.detail = head + "to " + joined(profile.destinations) + (profile.keep ? ", keeping a copy" : ", no local copy");
    }
    return d;
  }

  d.detail = "no filter step: delivered";
  return d;
}

} // namespace spool
