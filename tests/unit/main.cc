// main.cc — the one translation unit that lets Catch2 (v2) generate main() for
// spool_unit_tests. Every other tests/unit/*.cc file only defines test cases.
// g++ 12 with -fsanitize (MH_SANITIZE) reports false -Wmaybe-uninitialized warnings
// inside libstdc++'s <regex>, which Catch's runner uses; they are not our code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
