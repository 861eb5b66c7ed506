"""mh-serve's forward-confirmed reverse-DNS check of SMTP clients (SPEC §8), end to end:
a real dnsmasq on loopback (dnsfixture.py, records in tests/dns/records.conf) as the
server's resolver, clients connecting from 127.0.0.2 (confirmed), .3 (no PTR) and .4
(forged PTR); sendmail's exact replies at RCPT; DNS trouble (SERVFAIL, silence) as 451;
trusted_networks skipping the check but never allowing relaying; --stdio mode; clients
that leave before DNS answers; and the config errors of dns.servers / trusted_networks."""

import os
import signal
import subprocess
import time

import mhtest
import mhtest_smtp
from dnsfixture import DnsFixture

NO_PTR = "550 5.7.1 Relaying denied. IP name lookup failed"
FORGED = "550 5.7.1 Relaying denied. IP name possibly forged"
TEMP = "451 4.4.3 Relaying temporarily denied. Cannot resolve PTR record for "
HOST = mhtest_smtp.HOST


def dns_config(server, trusted=None):
    text = f'dns: {{ servers: ["{server}"], timeout: 1s }}\n'
    if trusted is not None:
        text += "trusted_networks: [" + ", ".join(f'"{n}"' for n in trusted) + "]\n"
    return text


class FcrdnsCase(mhtest_smtp.SmtpTestCase):
    """An SMTP test whose loopback clients are NOT trusted unless a test says so."""

    TRUSTED_NETWORKS = None

    @classmethod
    def setUpClass(cls):
        cls.dns = DnsFixture()
        cls.dns.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.dns.close()

    def rcpt_reply(self, source, rcpt="alice@example.org"):
        """Connects from `source`, greets, starts a transaction; the reply to RCPT."""
        c = self.connect(source=source)
        self.assertTrue(c.cmd("EHLO client.test").startswith("250-" + HOST))
        self.assertEqual(c.cmd("MAIL FROM:<sender@remote.test>"), "250 2.1.0 Ok")
        return c, c.cmd(f"RCPT TO:<{rcpt}>")

    def send_message(self, c, subject):
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        self.assertRegex(c.cmd(f"Subject: {subject}\r\n\r\nbody\r\n."), r"^250 2\.0\.0 Ok: queued as ")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")


class Verdicts(FcrdnsCase):
    def test_confirmed_client_delivers_with_its_name(self):
        self.start_server(dns_config(self.dns.server))
        c, reply = self.rcpt_reply("127.0.0.2")
        self.assertEqual(reply, "250 2.1.5 Ok")
        self.send_message(c, "confirmed")
        [msg] = self.messages("alice@example.org")
        self.assertIn(b"Received: from client.test (good.example.test [127.0.0.2])\n\tby mx.test (mailhost) with ESMTP",
                      msg)
        self.wait_for_log('rdns="confirmed: PTR good.example.test has A 127.0.0.2"')
        self.assertIn("client=127.0.0.2(good.example.test) helo=", self.log())

    def test_no_ptr_is_refused_at_rcpt(self):
        self.start_server(dns_config(self.dns.server))
        c, reply = self.rcpt_reply("127.0.0.3")
        self.assertEqual(reply, NO_PTR)
        # The same answer for an unknown account: the verdict comes first, so a refused
        # client learns nothing about which accounts exist.
        self.assertEqual(c.cmd("RCPT TO:<nobody@example.org>"), NO_PTR)
        self.assertEqual(c.cmd("DATA"), "554 5.5.1 Error: no valid recipients")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(self.count_all_messages(), 0)
        self.wait_for_log('refused=<alice@example.org>(550 5.7.1)')
        self.assertIn('rdns="no_ptr: ', self.log())

    def test_forged_ptr_is_refused_at_rcpt(self):
        self.start_server(dns_config(self.dns.server))
        for source in ("127.0.0.4", "127.0.0.5"):  # PTR to another address; PTR to no name
            with self.subTest(source=source):
                c, reply = self.rcpt_reply(source)
                self.assertEqual(reply, FORGED)
                self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(self.count_all_messages(), 0)

    def test_relaying_is_denied_before_the_verdict(self):
        self.start_server(dns_config(self.dns.server))
        c, reply = self.rcpt_reply("127.0.0.2", rcpt="someone@elsewhere.test")
        self.assertEqual(reply, "550 5.7.1 Relaying denied")
        c, reply = self.rcpt_reply("127.0.0.3", rcpt="someone@elsewhere.test")
        self.assertEqual(reply, "550 5.7.1 Relaying denied")

    def test_servfail_is_temporary(self):
        self.start_server(dns_config(self.dns.servfail))
        c, reply = self.rcpt_reply("127.0.0.2")
        self.assertEqual(reply, TEMP + "127.0.0.2")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(self.count_all_messages(), 0)

    def test_servfail_for_one_address_only_is_temporary(self):
        # dnsmasq forwards 9.0.0.127.in-addr.arpa to the SERVFAIL stub.
        self.start_server(dns_config(self.dns.server))
        c, reply = self.rcpt_reply("127.0.0.9")
        self.assertEqual(reply, TEMP + "127.0.0.9")

    def test_silent_dns_is_temporary_and_the_greeting_does_not_wait(self):
        self.start_server(dns_config(self.dns.blackhole))
        start = time.monotonic()
        c = self.connect(source="127.0.0.2")  # asserts the 220
        greeted = time.monotonic() - start
        # The lookup overlaps the greeting: 220 at once, the wait comes at the first command.
        self.assertLess(greeted, 1.0)
        self.assertTrue(c.cmd("EHLO client.test").startswith("250-" + HOST))
        waited = time.monotonic() - start
        # timeout 1s × 2 tries for the PTR step (fcrdns.h), then the answer.
        self.assertGreater(waited, 1.5)
        self.assertLess(waited, 10)
        self.assertEqual(c.cmd("MAIL FROM:<sender@remote.test>"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), TEMP + "127.0.0.2")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.wait_for_log('rdns="temporary_failure: PTR lookup')


class TrustedNetworks(FcrdnsCase):
    def test_trusted_client_skips_the_check(self):
        # The DNS server never answers: a trusted client must not be asked about at all.
        self.start_server(dns_config(self.dns.blackhole, trusted=["127.0.0.3/32"]))
        start = time.monotonic()
        c, reply = self.rcpt_reply("127.0.0.3")
        self.assertEqual(reply, "250 2.1.5 Ok")
        self.assertLess(time.monotonic() - start, 1.5)
        self.send_message(c, "trusted")
        [msg] = self.messages("alice@example.org")
        self.assertIn(b"Received: from client.test (unknown [127.0.0.3])", msg)
        self.wait_for_log('rdns="trusted network 127.0.0.3/32"')

    def test_only_the_listed_networks_are_trusted(self):
        self.start_server(dns_config(self.dns.server, trusted=["127.0.0.3/32"]))
        self.assertEqual(self.rcpt_reply("127.0.0.3")[1], "250 2.1.5 Ok")
        self.assertEqual(self.rcpt_reply("127.0.0.4")[1], FORGED)
        c, reply = self.rcpt_reply("127.0.0.2")
        self.assertEqual(reply, "250 2.1.5 Ok")
        self.send_message(c, "confirmed")
        [msg] = self.messages("alice@example.org")
        self.assertIn(b"(good.example.test [127.0.0.2])", msg)

    def test_trusted_networks_never_permit_relaying(self):
        self.start_server(dns_config(self.dns.server, trusted=["127.0.0.0/8"]))
        c, reply = self.rcpt_reply("127.0.0.3", rcpt="someone@elsewhere.test")
        self.assertEqual(reply, "550 5.7.1 Relaying denied")
        self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")


class ClientsThatLeave(FcrdnsCase):
    def test_disconnect_before_the_dns_answer(self):
        # Silent DNS: every answer (a timeout) comes ~2 s after the client has gone.
        # Room for the three that wait for their verdict (they read no more until it
        # comes, so their slots are held up to the bounded DNS time) plus one.
        self.start_server(dns_config(self.dns.blackhole) + "limits: { connections_per_ip: 4 }\n")
        for _ in range(3):  # connected, greeted, gone without a word
            c = self.connect(source="127.0.0.2")
            c.close()
        for _ in range(3):  # gone right after a command that waits for the verdict
            c = self.connect(source="127.0.0.2")
            c.send("EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n")
            c.close()
        for _ in range(3):  # gone before even reading the greeting
            c = mhtest_smtp.RawClient(self.port, source="127.0.0.2")
            c.close()
        # The silent ones gave their slots back at once, not when DNS answers.
        time.sleep(0.3)
        c = self.connect(source="127.0.0.2")
        self.assertTrue(c.cmd("EHLO client.test").startswith("250-" + HOST))
        # After every pending answer has come back, the server still serves.
        time.sleep(2.5)
        self.assertIsNone(self.proc.poll(), self.log())
        c, reply = self.rcpt_reply("127.0.0.2")
        self.assertEqual(reply, TEMP + "127.0.0.2")
        self.assertIsNone(self.proc.poll(), self.log())
        self.assertNotIn("internal error", self.log())

    def test_sigterm_while_waiting_for_dns(self):
        self.start_server(dns_config(self.dns.blackhole))
        c = self.connect(source="127.0.0.2")
        c.send("EHLO client.test\r\n")
        time.sleep(0.2)
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(c.reply(), f"421 4.3.2 {HOST} Service shutting down, closing transmission channel")
        self.assertLess(time.monotonic() - start, 1.5)  # did not wait for DNS (2 s)
        self.assertEqual(self.proc.wait(20), 0)


class Stdio(FcrdnsCase):
    def stdio(self, client_ip, config, script):
        self.port = mhtest.free_port()  # written to mailhost.yaml, not listened on
        self.write_config(config)
        return subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "smtp",
                               "--client-ip", client_ip], input=script.encode(), capture_output=True, timeout=60)

    def test_no_ptr_over_stdio(self):
        proc = self.stdio("127.0.0.3", dns_config(self.dns.server),
                          "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.org>\r\nQUIT\r\n")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        lines = proc.stdout.decode().split("\r\n")
        self.assertEqual(lines[-4:], ["250 2.1.0 Ok", NO_PTR, "221 2.0.0 Bye", ""])
        self.assertEqual(self.count_all_messages(), 0)

    def test_confirmed_over_stdio(self):
        proc = self.stdio("127.0.0.2", dns_config(self.dns.server),
                          "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
                          "Subject: s\r\n\r\nx\r\n.\r\nQUIT\r\n")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        [msg] = self.messages("alice@example.org")
        self.assertIn(b"Received: from c.test (good.example.test [127.0.0.2])\n", msg)

    def test_trusted_over_stdio(self):
        proc = self.stdio("127.0.0.3", dns_config(self.dns.blackhole, trusted=["127.0.0.0/24"]),
                          "HELO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@example.org>\r\nQUIT\r\n")
        self.assertEqual(proc.stdout.decode().split("\r\n")[-3], "250 2.1.5 Ok")


class Config(mhtest.SpoolTestCase):
    def check(self, text):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(text)
        return self.run_tool("mh-serve", "--check-config", "--json")

    def test_good_dns_and_trusted_networks(self):
        r = self.check('dns: { servers: ["127.0.0.1:5353", "[::1]:53", "192.0.2.53"], timeout: 2s }\n'
                       'trusted_networks: ["127.0.0.1", "10.0.0.0/8", "2001:DB8::/32"]\n')
        self.assertExit(r, 0)
        self.assertEqual(r.json()["trusted_networks"], ["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32"])

    def test_bad_dns_server(self):
        for bad, why in (("dns.example.net", "bad DNS server 'dns.example.net': not an IP address"),
                         ("127.0.0.1:99999", "bad DNS server '127.0.0.1:99999': bad port")):
            with self.subTest(bad=bad):
                r = self.check(f'hostname: mx.test\ndns:\n  servers: ["{bad}"]\n')
                self.assertExit(r, 78)
                self.assertEqual(r.err, f"mh-serve: error: {self.path('mailhost.yaml')}:3: key 'dns.servers': {why}\n")

    def test_bad_dns_timeout(self):
        r = self.check("dns: { timeout: 0s }\n")
        self.assertExit(r, 78)
        self.assertRegex(r.err, r"mailhost\.yaml:1: key 'dns\.timeout': ")

    def test_trusted_network_with_host_bits(self):
        r = self.check('hostname: mx.test\ntrusted_networks: ["10.0.0.1/8"]\n')
        self.assertExit(r, 78)
        self.assertEqual(r.err, f"mh-serve: error: {self.path('mailhost.yaml')}:2: key 'trusted_networks': "
                                "'10.0.0.1/8' is not a network: host bits are set after the /8 prefix\n")

    def test_bad_dns_server_stops_the_daemon_too(self):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write(f'listen: {{ smtp: "127.0.0.1:{mhtest.free_port()}" }}\ndns: {{ servers: ["nonsense"] }}\n')
        r = self.run_tool("mh-serve", timeout=30)
        self.assertExit(r, 78)
        self.assertIn("key 'dns.servers': bad DNS server 'nonsense'", r.err)


if __name__ == "__main__":
    mhtest.main()
