"""postmaster (RFC 5321 §4.5.1, SPEC §8): <postmaster> without a domain and postmaster@D
for every hosted D, in any case, are always accepted — even from a client failing the
reverse-DNS check and for a domain over its quota — and routed to the account postmaster
of D, else D's domain.yaml `postmaster:`, else the server's own SPOOL/postmaster/Maildir/
(a Maildir any reader opens — mutt -f, Python's mailbox — in no quota); the bare form to mailhost.yaml `postmaster:` when
set. mh-user domain show and mh-serve --check-config say where it goes."""

import mailbox
import os

import mhtest
import mhtest_smtp
from dnsfixture import DnsFixture

OK_RCPT = "250 2.1.5 Ok"
NO_PTR = "550 5.7.1 Relaying denied. IP name lookup failed"


class PostmasterCase(mhtest_smtp.SmtpTestCase):
    def send(self, rcpt, subject, source=None, size=None):
        c = self.connect(source=source)
        self.assertTrue(c.cmd("EHLO client.test").startswith("250-"))
        self.assertEqual(c.cmd("MAIL FROM:<sender@remote.test>" + (f" SIZE={size}" if size else "")), "250 2.1.0 Ok")
        self.assertEqual(c.cmd(f"RCPT TO:<{rcpt}>"), OK_RCPT)
        self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
        self.assertRegex(c.cmd(f"Subject: {subject}\r\n\r\n" + "x" * (size or 10) + "\r\n."),
                         r"^250 2\.0\.0 Ok: queued as ")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")

    def server_box(self):
        return self.path("postmaster", "Maildir")

    def subjects(self, maildir):
        return sorted(m["Subject"] for m in mailbox.Maildir(maildir, create=False))

    def set_domain_postmaster(self, domain, address):
        with open(self.path("domains", domain, "domain.yaml"), "a") as f:
            f.write(f"postmaster: {address}\n")

    def domain_show(self, domain):
        r = self.user("domain", "show", domain, "--json")
        self.assertExit(r, 0)
        return r.json()["postmaster"]


class ServerMailbox(PostmasterCase):
    def test_every_spelling_reaches_the_server_mailbox(self):
        self.start_server()
        self.send("postmaster", "bare")
        self.send("POSTMASTER", "upper")
        self.send("Postmaster@example.org", "domain")
        self.send("postmaster@EXAMPLE.ORG", "domain-upper")
        box = self.server_box()
        for sub in ("tmp", "new", "cur"):
            self.assertTrue(os.path.isdir(os.path.join(box, sub)), sub)
        self.assertEqual(self.subjects(box), ["bare", "domain", "domain-upper", "upper"])
        self.assertEqual(os.listdir(os.path.join(box, "tmp")), [])
        self.assertEqual(self.count_all_messages(), 0)  # no account got a copy
        # In no quota: nothing was recorded for the server mailbox or the domain.
        size_file = os.path.join(box, "maildirsize")
        if os.path.exists(size_file):
            with open(size_file) as f:
                lines = f.read().splitlines()[1:]  # after the quota line: "<bytes> <count>"
            self.assertEqual(sum(int(line.split()[0]) for line in lines), 0)
        self.assertEqual(self.domain_show("example.org")["kind"], "server_mailbox")

    def test_refused_dns_client_and_full_domain_still_reach_postmaster(self):
        self.add_domain("small.example", "--quota", "2K")
        self.add_account("tiny@small.example")
        self.add_account("postmaster@small.example")
        self.start_server()
        self.send("tiny@small.example", "fill", size=1500)
        c = self.session()
        self.assertEqual(c.cmd("MAIL FROM:<sender@remote.test> SIZE=1000"), "250 2.1.0 Ok")
        self.assertEqual(c.cmd("RCPT TO:<tiny@small.example>"), "552 5.2.2 <tiny@small.example>: Disk quota exceeded")
        self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
        self.send("PostMaster@small.example", "over quota", size=1000)
        [msg] = self.messages("postmaster@small.example")
        self.assertIn(b"Subject: over quota", msg)
        show = self.domain_show("small.example")
        self.assertEqual((show["kind"], show["address"], show["source"]),
                         ("account", "postmaster@small.example", "account"))


class Configured(PostmasterCase):
    def test_domain_yaml_and_mailhost_yaml_addresses(self):
        self.add_domain("other.test")
        self.add_domain("away.test")
        self.set_domain_postmaster("other.test", "alice@example.org")
        self.set_domain_postmaster("away.test", "admin@remote.test")
        self.start_server("postmaster: bob@example.org\n")
        self.send("postmaster@other.test", "to alice")
        self.send("postmaster", "to bob")
        self.send("Postmaster@away.test", "to remote")
        self.assertIn(b"Subject: to alice", self.messages("alice@example.org")[0])
        self.assertIn(b"Subject: to bob", self.messages("bob@example.org")[0])
        self.wait_for_log("to=<admin@remote.test>")
        self.assertFalse(os.path.exists(os.path.join(self.server_box(), "new")))
        self.assertEqual(self.domain_show("other.test"),
                         {"kind": "account", "address": "alice@example.org", "source": "domain.yaml"})
        self.assertEqual(self.domain_show("away.test"),
                         {"kind": "remote", "address": "admin@remote.test", "source": "domain.yaml"})
        r = self.run_tool("mh-serve", "--spool", self.spool, "--check-config")
        self.assertExit(r, 0)
        self.assertIn("postmaster: account bob@example.org (mailhost.yaml)", r.out)
        self.assertIn("postmaster@away.test: queued for admin@remote.test (domain.yaml)", r.out)
        self.assertIn("postmaster@example.org: server mailbox SPOOL/postmaster/Maildir (default)", r.out)
        j = self.run_tool("mh-serve", "--spool", self.spool, "--check-config", "--json").json()
        self.assertEqual(j["postmaster"]["domains"]["other.test"], "account alice@example.org (domain.yaml)")


class Fcrdns(PostmasterCase):
    TRUSTED_NETWORKS = None

    def test_client_without_ptr_reaches_postmaster_only(self):
        with DnsFixture() as dns:
            self.start_server(f'dns: {{ servers: ["{dns.server}"], timeout: 1s }}\n')
            c = self.connect(source="127.0.0.3")
            self.assertTrue(c.cmd("EHLO client.test").startswith("250-"))
            self.assertEqual(c.cmd("MAIL FROM:<sender@remote.test>"), "250 2.1.0 Ok")
            self.assertEqual(c.cmd("RCPT TO:<alice@example.org>"), NO_PTR)
            self.assertEqual(c.cmd("RCPT TO:<postmaster>"), OK_RCPT)
            self.assertEqual(c.cmd("RCPT TO:<postmaster@example.org>"), OK_RCPT)
            self.assertEqual(c.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>")
            self.assertRegex(c.cmd("Subject: help\r\n\r\nI am blocked\r\n."), r"^250 2\.0\.0 Ok: queued as ")
            self.assertEqual(c.cmd("QUIT"), "221 2.0.0 Bye")
            self.stop_server()
        # Both spellings lead to the server mailbox: one copy; alice got nothing.
        self.assertEqual(self.subjects(self.server_box()), ["help"])
        self.assertEqual(self.messages("alice@example.org"), [])


if __name__ == "__main__":
    mhtest.main()
