// test_main.cc — the Catch2 main of mh_dns_unit_tests (fcrdns_test.cc, mx_test.cc, networks_test.cc).
// The lookups themselves are tested against a real dnsmasq in tests/cli/test_fcrdns.py.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
