#!/usr/bin/env python3
"""Runs the test DNS server (tests/cli/dnsfixture.py with tests/dns/records.conf) in the
foreground for trying mh-serve by hand: prints the addresses to put into mailhost.yaml
(`dns: { servers: ["127.0.0.1:PORT"], timeout: 1s }`), then serves until Ctrl-C / SIGTERM.
    python3 tests/dns/serve.py"""

import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from dnsfixture import DnsFixture  # noqa: E402


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with DnsFixture() as dns:
        print(f"dnsmasq   {dns.server}\nservfail  {dns.servfail}\nrefused   {dns.refused}\n"
              f"blackhole {dns.blackhole}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
