// icu_runtime.cc — dlopen of libicuuc.so.<major> and lookup of its version-suffixed
// symbols (uidna_openUTS46_72 …), the names ICU's own headers rename calls to.
#include "icu_runtime.h"

#include "spool/error.h"

#include <dlfcn.h>
#include <unicode/uvernum.h>

#include <string>

// Two steps so that the argument is macro-expanded first: ICU's headers #define each API
// name to its suffixed symbol, so MH_ICU_NAME(ucnv_open) is "ucnv_open_72".
#define MH_ICU_STRING(x) #x
#define MH_ICU_NAME(x) MH_ICU_STRING(x)

namespace spool::detail {
namespace {

constexpr const char* library_name = "libicuuc.so." MH_ICU_NAME(U_ICU_VERSION_MAJOR_NUM);

[[noreturn]] void unavailable(const std::string& what) {
  throw Error(Errc::other, std::string("cannot use ICU (") + library_name + ", needed for internationalized "
                               "names and encoded headers): " + what);
}

template <typename Fn>
void bind(void* library, Fn& slot, const char* symbol) {
  void* p = ::dlsym(library, symbol);
  if (!p) unavailable(std::string("no symbol ") + symbol);
  slot = reinterpret_cast<Fn>(p);
}

IcuApi load() {
  // Never closed: the API stays valid for the life of the process.
  void* library = ::dlopen(library_name, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char* why = ::dlerror();
    unavailable(why ? why : "dlopen failed");
  }
  IcuApi api{};
  bind(library, api.open_uts46, MH_ICU_NAME(uidna_openUTS46));
  bind(library, api.close_uts46, MH_ICU_NAME(uidna_close));
  bind(library, api.name_to_ascii, MH_ICU_NAME(uidna_nameToASCII_UTF8));
  bind(library, api.name_to_unicode, MH_ICU_NAME(uidna_nameToUnicodeUTF8));
  bind(library, api.error_name, MH_ICU_NAME(u_errorName));
  bind(library, api.open_converter, MH_ICU_NAME(ucnv_open));
  bind(library, api.close_converter, MH_ICU_NAME(ucnv_close));
  bind(library, api.to_uchars, MH_ICU_NAME(ucnv_toUChars));
  bind(library, api.reset_converter, MH_ICU_NAME(ucnv_reset));
  bind(library, api.nfkc_casefold_instance, MH_ICU_NAME(unorm2_getNFKCCasefoldInstance));
  bind(library, api.normalize, MH_ICU_NAME(unorm2_normalize));
  bind(library, api.utf8_to_utf16, MH_ICU_NAME(u_strFromUTF8WithSub));
  bind(library, api.utf16_to_utf8, MH_ICU_NAME(u_strToUTF8));
  return api;
}

} // namespace

const IcuApi& icu() {
  static const IcuApi api = load(); // thread-safe; a failed load is retried next call
  return api;
}

} // namespace spool::detail
