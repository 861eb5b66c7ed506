"""`mh-serve --stdio pop3`: POP3 dialogues over pipes with the real binaries on a private
spool — exact replies (greeting, CAPA, login, STAT/LIST/UIDL sizes in CRLF octets), a RETR
whose dot-stuffed lines come back doubled, TOP, DELE+QUIT removing the file with
maildirsize staying exact (`mh-quota recalc` agreeing), a dropped connection deleting
nothing, plaintext refused outside auth.allow_plaintext, and one session per mailbox."""

import base64
import json
import os
import subprocess

import mhtest

TEST_BIN = os.environ.get("MH_TEST_BIN", os.path.join(mhtest.BIN, "..", "tests"))

GREETING = "+OK mailhost POP3 ready."
CAPA = ["+OK", "CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
PLAINTEXT_REFUSED = "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
PLAIN_ALICE = base64.b64encode(b"\0alice@example.org\0alice-pw").decode()

FIRST = (b"From: a@example.net\nSubject: first\n\n.a line starting with a dot\n..two dots\n"
         b"middle.dot\n.\nend\n")
SECOND = b"From: b@example.net\nSubject: second\n\nline 1\nline 2\nline 3\n"


def wire(message):
    """What POP3 sends for a message of LF lines: CRLF line ends."""
    return message.replace(b"\n", b"\r\n")


class Pop3Client:
    """A POP3 client over the pipes of `mh-serve --stdio pop3`, one command at a time."""

    def __init__(self, spool, *args):
        self.proc = subprocess.Popen([mhtest.tool_path("mh-serve"), "--spool", spool, "--stdio", "pop3", *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def line(self):
        raw = self.proc.stdout.readline()
        if not raw.endswith(b"\r\n"):
            raise AssertionError(f"no CRLF-terminated line from the server: {raw!r}")
        return raw[:-2].decode("latin-1")

    def send(self, text):
        self.proc.stdin.write(text.encode("latin-1") + b"\r\n")
        self.proc.stdin.flush()

    def cmd(self, text):
        self.send(text)
        return self.line()

    def multi(self, text):
        """A multi-line response: the status line, then the raw body lines (still
        dot-stuffed, without CRLF) up to the terminating '.'."""
        first = self.cmd(text)
        if not first.startswith("+OK"):
            return first, None
        lines = []
        while True:
            raw = self.proc.stdout.readline()
            if not raw.endswith(b"\r\n"):
                raise AssertionError(f"multi-line response cut short: {raw!r}")
            if raw == b".\r\n":
                return first, lines
            lines.append(raw[:-2])

    def finish(self):
        """Closes stdin (the client is gone) and returns (exit code, rest of stdout, stderr)."""
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err.decode()


class StdioPop3(mhtest.SpoolTestCase):
    def setUp(self):
        super().setUp()
        self.add_domain("example.org")
        self.add_account("alice@example.org", "alice-pw")
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write("hostname: pop.test\n")  # auth.allow_plaintext: the default, 127.0.0.1 and ::1
        self.uidls = [self.deliver(FIRST), self.deliver(SECOND)]
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.communicate()
        super().tearDown()

    def deliver(self, data):
        proc = subprocess.run([os.path.join(TEST_BIN, "mh-test-deliver"), "--spool", self.spool, "alice@example.org"],
                              input=data, capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc)
        return json.loads(proc.stdout)["outcomes"][0]["uidl"]

    def maildir_files(self):
        md = self.path("domains/example.org/accounts/alice/Maildir")
        return sorted(os.listdir(os.path.join(md, "new")) + os.listdir(os.path.join(md, "cur")))

    def client(self, client_ip="127.0.0.1"):
        c = Pop3Client(self.spool, "--client-ip", client_ip)
        self.clients.append(c)
        self.assertEqual(c.line(), GREETING)
        return c

    def login(self, c):
        self.assertEqual(c.cmd("USER alice@example.org"), "+OK")
        self.assertEqual(c.cmd("PASS alice-pw"), "+OK Logged in.")

    def test_capa_login_stat_list_uidl(self):
        c = self.client()
        self.assertEqual(c.multi("CAPA"), (CAPA[0], [l.encode() for l in CAPA[1:] + ["USER", "SASL PLAIN"]]))
        self.login(c)
        total = len(wire(FIRST)) + len(wire(SECOND))
        self.assertEqual(c.cmd("STAT"), f"+OK 2 {total}")
        self.assertEqual(c.multi("LIST"), ("+OK 2 messages:", [b"1 %d" % len(wire(FIRST)), b"2 %d" % len(wire(SECOND))]))
        self.assertEqual(c.cmd("LIST 2"), f"+OK 2 {len(wire(SECOND))}")
        self.assertEqual(c.multi("UIDL"), ("+OK", [f"1 {self.uidls[0]}".encode(), f"2 {self.uidls[1]}".encode()]))
        self.assertEqual(c.cmd("UIDL 3"), "-ERR There's no message 3.")
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        code, rest, err = c.finish()
        self.assertEqual((code, rest), (0, b""))
        self.assertIn(f"pop3: login client=127.0.0.1 user=alice@example.org method=USER messages=2 bytes={total}", err)
        self.assertIn('result="quit"', err)

    def test_retr_is_dot_stuffed_and_exactly_as_long_as_announced(self):
        c = self.client()
        self.login(c)
        status, lines = c.multi("RETR 1")
        self.assertEqual(status, f"+OK {len(wire(FIRST))} octets")
        self.assertEqual(lines, [b"From: a@example.net", b"Subject: first", b"", b"..a line starting with a dot",
                                 b"...two dots", b"middle.dot", b"..", b"end"])
        # Undoing the stuffing gives the message with CRLF line ends, of the size announced.
        body = b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines)
        self.assertEqual(body, wire(FIRST))
        status, lines = c.multi("TOP 2 1")
        self.assertEqual((status, lines), ("+OK", [b"From: b@example.net", b"Subject: second", b"", b"line 1"]))
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")
        self.assertEqual(len(self.maildir_files()), 2)

    def test_dele_quit_removes_the_file_and_maildirsize_stays_exact(self):
        c = self.client()
        self.login(c)
        self.assertEqual(c.cmd("DELE 1"), "+OK Marked to be deleted.")
        self.assertEqual(c.cmd("RETR 1"), "-ERR There's no message 1.")
        self.assertEqual(c.cmd("STAT"), f"+OK 1 {len(wire(SECOND))}")
        self.assertEqual(len(self.maildir_files()), 2)  # only marked so far
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out, messages deleted.")
        code, _, err = c.finish()
        self.assertEqual(code, 0)
        self.assertIn("deleted=1 deleted_bytes=%d" % len(wire(FIRST)), err)
        [left] = self.maildir_files()
        self.assertTrue(left.startswith(self.uidls[1] + ",S=%d,W=%d" % (len(SECOND), len(wire(SECOND)))), left)
        show = self.run_tool("mh-quota", "show", "alice@example.org", "--json")
        self.assertExit(show, 0)
        self.assertEqual((show.json()["usage_bytes"], show.json()["usage_messages"]), (len(SECOND), 1))
        recalc = self.run_tool("mh-quota", "recalc", "example.org", "--json")
        self.assertExit(recalc, 0)
        [m] = recalc.json()["mailboxes"]
        self.assertEqual((m["previous_bytes"], m["previous_messages"]), (m["usage_bytes"], m["usage_messages"]))
        self.assertEqual((m["usage_bytes"], m["usage_messages"]), (len(SECOND), 1))

    def test_dropped_connection_deletes_nothing(self):
        c = self.client()
        self.login(c)
        self.assertEqual(c.cmd("DELE 1"), "+OK Marked to be deleted.")
        self.assertEqual(c.cmd("DELE 2"), "+OK Marked to be deleted.")
        code, rest, err = c.finish()  # EOF instead of QUIT
        self.assertEqual((code, rest), (0, b""))
        self.assertEqual(len(self.maildir_files()), 2)
        self.assertIn('deleted=2 deleted_bytes=%d result="disconnected"' % (len(wire(FIRST)) + len(wire(SECOND))), err)
        # The lock went with the process: a new session gets in and sees both.
        c = self.client()
        self.login(c)
        self.assertEqual(c.cmd("STAT"), "+OK 2 %d" % (len(wire(FIRST)) + len(wire(SECOND))))

    def test_one_session_per_mailbox(self):
        first = self.client()
        self.login(first)
        second = self.client()
        self.assertEqual(second.cmd("USER alice@example.org"), "+OK")
        self.assertEqual(second.cmd("PASS alice-pw"), "-ERR [IN-USE] Mailbox is locked by another POP3 session.")
        self.assertEqual(first.cmd("QUIT"), "+OK Logging out.")
        first.finish()
        self.assertEqual(second.cmd("USER alice@example.org"), "+OK")
        self.assertEqual(second.cmd("PASS alice-pw"), "+OK Logged in.")

    def test_wrong_password_and_auth_plain(self):
        c = self.client()
        self.assertEqual(c.cmd("USER alice@example.org"), "+OK")
        self.assertEqual(c.cmd("PASS Zq9 not it"), "-ERR [AUTH] Authentication failed.")
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertEqual(c.cmd(PLAIN_ALICE), "+OK Logged in.")
        self.assertEqual(c.cmd("NOOP"), "+OK")
        code, _, err = c.finish()
        self.assertEqual(code, 0)
        self.assertIn("login failed client=127.0.0.1 method=USER result=bad_credentials",
                      err)
        self.assertIn("login client=127.0.0.1 user=alice@example.org method=PLAIN messages=2", err)
        self.assertNotIn("Zq9", err)  # passwords are never logged
        self.assertNotIn("alice-pw", err)

    def test_plaintext_refused_outside_allow_plaintext(self):
        c = self.client("192.0.2.1")
        self.assertEqual(c.multi("CAPA"), (CAPA[0], [l.encode() for l in CAPA[1:]]))
        self.assertEqual(c.cmd("USER alice@example.org"), PLAINTEXT_REFUSED)
        self.assertEqual(c.cmd("AUTH PLAIN " + PLAIN_ALICE), PLAINTEXT_REFUSED)
        self.assertEqual(c.cmd("STLS"), "-ERR TLS support isn't enabled.")
        self.assertEqual(c.cmd("STAT"), "-ERR Not logged in.")
        self.assertEqual(c.cmd("QUIT"), "+OK Logging out.")

    def test_allow_plaintext_from_config(self):
        with open(self.path("mailhost.yaml"), "w") as f:
            f.write('hostname: pop.test\nauth: { allow_plaintext: ["192.0.2.0/24"] }\n')
        self.login(self.client("192.0.2.1"))
        self.assertEqual(self.client("127.0.0.1").cmd("USER alice@example.org"), PLAINTEXT_REFUSED)

    def test_pipelined_dialogue_in_one_write(self):
        proc = subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "pop3"],
                              input=b"CAPA\r\nUSER alice@example.org\r\nPASS alice-pw\r\nSTAT\r\nTOP 1 0\r\n"
                                    b"DELE 2\r\nQUIT\r\nNOOP\r\n",
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        total = len(wire(FIRST)) + len(wire(SECOND))
        self.assertEqual(proc.stdout.decode(), "\r\n".join(
            [GREETING] + CAPA + ["USER", "SASL PLAIN", ".", "+OK", "+OK Logged in.", f"+OK 2 {total}", "+OK",
                                 "From: a@example.net", "Subject: first", "", ".", "+OK Marked to be deleted.",
                                 "+OK Logging out, messages deleted.", ""]))
        self.assertEqual(len(self.maildir_files()), 1)

    def test_over_long_line_and_garbage(self):
        proc = subprocess.run([mhtest.tool_path("mh-serve"), "--spool", self.spool, "--stdio", "pop3"],
                              input=b"X" * 5000 + b"\r\n" + bytes(b for b in range(256) if b != 10) * 4 +
                                    b"\r\nNOOP\r\n",
                              capture_output=True, timeout=60)
        self.assertEqual(proc.returncode, 0)
        lines = proc.stdout.decode("latin-1").split("\r\n")
        self.assertEqual(lines[:3], [GREETING, "-ERR Line too long.", "-ERR Unknown command."])
        self.assertEqual(lines[-2], "+OK")


if __name__ == "__main__":
    mhtest.main()
