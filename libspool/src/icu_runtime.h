// icu_runtime.h — the few ICU functions libspool uses (UTS #46 for IDN, converters for
// RFC 2047 words, NFKC case folding for filter matching), loaded with dlopen on first use. A tool run that never meets a
// non-ASCII domain or an encoded header never maps ICU: relocating libicuuc at start-up
// cost more than all of `mh-quota show` (bench/README.md, store.sh).
#pragma once

#include <unicode/ucnv.h>
#include <unicode/uidna.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

namespace spool::detail {

struct IcuApi {
  decltype(&::uidna_openUTS46) open_uts46;
  decltype(&::uidna_close) close_uts46;
  decltype(&::uidna_nameToASCII_UTF8) name_to_ascii;
  decltype(&::uidna_nameToUnicodeUTF8) name_to_unicode;
  decltype(&::u_errorName) error_name;
  decltype(&::ucnv_open) open_converter;
  decltype(&::ucnv_close) close_converter;
  decltype(&::ucnv_toUChars) to_uchars;
  decltype(&::ucnv_reset) reset_converter;
  decltype(&::unorm2_getNFKCCasefoldInstance) nfkc_casefold_instance;
  decltype(&::unorm2_normalize) normalize;
  decltype(&::u_strFromUTF8WithSub) utf8_to_utf16;
  decltype(&::u_strToUTF8) utf16_to_utf8;
};

// Loads the libicuuc the build was compiled against (same major version) once per
// process; throws Error(other) naming the library when it or a symbol is missing.
const IcuApi& icu();

} // namespace spool::detail
