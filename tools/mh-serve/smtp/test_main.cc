// test_main.cc — the Catch2 main of mh_serve_unit_tests (session and net helpers).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
