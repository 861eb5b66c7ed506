"""mh-serve's POP3 (RFC 1939, 2449, 5034) with Python's poplib and a raw client: plain,
STLS and POP3S; CAPA; USER/PASS and AUTH PLAIN; plaintext logins refused off
auth.allow_plaintext; every command's exact reply; UIDLs that are mailhost's stable
ones (the Maildir name up to ',' or ':') across sessions, restarts and new/→cur/;
deletions only at QUIT, none on a dropped connection, quota back to what remains; one
session per mailbox; a message purged during a session; dot-stuffing both ways."""

import os
import poplib
import time

import mhtest
from mhtest_mail import (CAPA_BASE, PASSWORD, PLAINTEXT_REFUSED, POP_GREETING, UNTRUSTED, MailTestCase, b64,
                         client_tls_context, plain, uidl_of, unstuff)

IN_USE = "-ERR [IN-USE] Mailbox is locked by another POP3 session."
AUTH_FAILED = "-ERR [AUTH] Authentication failed."


def msg(subject, body="hello\r\n"):
    return f"From: sender@remote.test\r\nSubject: {subject}\r\n\r\n{body}".encode()


class Pop3Case(MailTestCase):
    def setUp(self):
        super().setUp()
        self.start_mail_server()

    def deliver(self, *subjects, to="alice@example.org"):
        """One message per subject; returns [(uidl, file name)] in delivery order."""
        out = []
        for s in subjects:
            [name] = self.send_mail(to, msg(s, f"body of {s}\r\n"))
            out.append((uidl_of(name), name))
        return out

    def wire(self, address, name):
        """A stored message as POP3 sends it (CRLF line ends, before dot-stuffing)."""
        _, data = self.maildir_files(address)[name]
        self.assertNotIn(b"\r", data)
        return data.replace(b"\n", b"\r\n")

    def wait_logout(self, result, n=1):
        deadline = time.time() + 10
        while self.log().count(f'result="{result}"') < n:
            self.assertLess(time.time(), deadline, self.log())
            time.sleep(0.02)


class Pop3Clients(Pop3Case):
    def test_poplib_plain_stls_and_ssl(self):
        [(uidl, name)] = self.deliver("first")
        wire = self.wire("alice@example.org", name)
        p = self.poplib_client("pop3")
        self.assertEqual(p.getwelcome(), POP_GREETING.encode())
        self.assertEqual(p.capa(), {"CAPA": [], "TOP": [], "UIDL": [], "RESP-CODES": [], "AUTH-RESP-CODE": [],
                                    "PIPELINING": [], "STLS": [], "USER": [], "SASL": ["PLAIN"]})
        self.assertEqual(p.user("alice@example.org"), b"+OK")
        self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
        self.assertEqual(p.stat(), (1, len(wire)))
        self.assertEqual(p.list(), (b"+OK 1 messages:", [f"1 {len(wire)}".encode()], len(f"1 {len(wire)}") + 2))
        self.assertEqual(p.uidl(), (b"+OK", [f"1 {uidl}".encode()], len(f"1 {uidl}") + 2))
        resp, lines, octets = p.retr(1)
        self.assertEqual(resp, f"+OK {len(wire)} octets".encode())
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", wire)
        self.assertEqual(p.quit(), b"+OK Logging out.")

        # From 127.0.0.2 without TLS the password is refused; after STLS it is taken.
        p = self.poplib_client("pop3", source=UNTRUSTED)
        self.assertNotIn("USER", p.capa())
        with self.assertRaises(poplib.error_proto) as e:
            p.user("alice@example.org")
        self.assertEqual(e.exception.args[0], PLAINTEXT_REFUSED.encode())
        self.assertEqual(p.stls(client_tls_context()), b"+OK Begin TLS negotiation now.")
        self.assertEqual(set(p.capa()), {"CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER",
                                         "SASL"})
        self.assertEqual(p.user("alice@example.org"), b"+OK")
        self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
        self.assertEqual(p.uidl(1), f"+OK 1 {uidl}".encode())
        self.assertEqual(p.quit(), b"+OK Logging out.")

        p = self.poplib_client("pop3s")
        self.assertEqual(p.getwelcome(), POP_GREETING.encode())
        self.assertEqual(p.user("alice@example.org"), b"+OK")
        self.assertEqual(p.pass_(PASSWORD), b"+OK Logged in.")
        self.assertEqual(p.stat(), (1, len(wire)))
        self.assertEqual(p.dele(1), b"+OK Marked to be deleted.")
        self.assertEqual(p.quit(), b"+OK Logging out, messages deleted.")
        self.assertEqual(self.maildir_files("alice@example.org"), {})

    def test_auth_plain(self):
        c = self.raw("pop3")
        self.assertEqual(c.pop_multi("AUTH"), ("+OK", ["PLAIN"]))
        self.assertEqual(c.pop("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), "+OK Logged in.")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")
        c = self.raw("pop3")
        self.assertEqual(c.pop("AUTH PLAIN"), "+ ")
        self.assertEqual(c.pop("*"), "-ERR Authentication aborted by client.")
        self.assertEqual(c.pop("AUTH PLAIN"), "+ ")
        self.assertEqual(c.pop("%%%%"), "-ERR Invalid base64 data.")
        self.assertEqual(c.pop("AUTH PLAIN " + b64("no-nul-here")), AUTH_FAILED)  # malformed: no login
        self.assertEqual(c.pop("AUTH CRAM-MD5"), "-ERR Unsupported authentication mechanism.")
        self.assertEqual(c.pop("AUTH PLAIN " + plain("alice@example.org", "wrong")), AUTH_FAILED)
        self.assertEqual(c.pop("AUTH PLAIN"), "+ ")
        self.assertEqual(c.pop(plain("alice@example.org", PASSWORD)), "+OK Logged in.")
        self.assertEqual(c.pop("AUTH PLAIN"), "-ERR Already logged in.")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")
        # Over POP3S from an untrusted address: fine. In the clear from there: refused.
        c = self.raw("pop3s", source=UNTRUSTED)
        self.assertEqual(c.pop("AUTH PLAIN " + plain("bob@example.org", PASSWORD)), "+OK Logged in.")
        c = self.raw("pop3", source=UNTRUSTED)
        self.assertEqual(c.pop_multi("AUTH"), ("+OK", []))
        self.assertEqual(c.pop("AUTH PLAIN " + plain("bob@example.org", PASSWORD)), PLAINTEXT_REFUSED)
        self.assertEqual(c.pop("AUTH PLAIN"), PLAINTEXT_REFUSED)
        self.assertEqual(c.pop("USER bob@example.org"), PLAINTEXT_REFUSED)
        self.assertEqual(c.pop("PASS " + PASSWORD), PLAINTEXT_REFUSED)
        self.assertEqual(self.log().count("pop3: login client=127.0.0.2 "), 1, self.log())

    def test_wrong_password_and_unknown_user_same_reply(self):
        for user, password in (("alice@example.org", "wrong"), ("nobody@example.org", PASSWORD), ("alice", PASSWORD)):
            c = self.raw("pop3")
            self.assertEqual(c.pop("USER " + user), "+OK")
            self.assertEqual(c.pop("PASS " + password), AUTH_FAILED)
            self.pop_login(c)  # the same session may try again; a success resets the throttle
            self.assertEqual(c.pop("QUIT"), "+OK Logging out.")


class Pop3Commands(Pop3Case):
    def test_every_command(self):
        msgs = self.deliver("one", "two", "three")
        wires = [self.wire("alice@example.org", name) for _, name in msgs]
        sizes = [len(w) for w in wires]
        # The errors, spread over two sessions (ten in one session close it).
        c = self.raw("pop3")
        self.assertEqual(c.pop("STAT"), "-ERR Not logged in.")
        self.assertEqual(c.pop("PASS " + PASSWORD), "-ERR No username given.")
        self.assertEqual(c.pop("FROB"), "-ERR Unknown command.")
        self.assertEqual(c.pop("NOOP"), "+OK")
        self.pop_login(c)
        self.assertEqual(c.pop("USER bob@example.org"), "-ERR Already logged in.")
        self.assertEqual(c.pop("LIST 0"), "-ERR There's no message 0.")
        self.assertEqual(c.pop("TOP 2"), "-ERR Syntax: TOP <message> <lines>")
        self.assertEqual(c.pop("RETR"), "-ERR Syntax: RETR <message>")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")
        self.assertTrue(c.at_eof())
        c = self.raw("pop3")
        self.pop_login(c)
        self.assertEqual(c.pop("STAT"), f"+OK 3 {sum(sizes)}")
        self.assertEqual(c.pop_multi("LIST"), ("+OK 3 messages:", [f"{i + 1} {s}" for i, s in enumerate(sizes)]))
        self.assertEqual(c.pop("LIST 2"), f"+OK 2 {sizes[1]}")
        self.assertEqual(c.pop("LIST 4"), "-ERR There's no message 4.")
        self.assertEqual(c.pop("LIST x"), "-ERR Invalid message number.")
        self.assertEqual(c.pop_multi("UIDL"), ("+OK", [f"{i + 1} {u}" for i, (u, _) in enumerate(msgs)]))
        self.assertEqual(c.pop("UIDL 3"), f"+OK 3 {msgs[2][0]}")
        self.assertEqual(c.pop("RETR 1"), f"+OK {sizes[0]} octets")
        self.assertEqual(unstuff(c.raw_multi()), wires[0])
        head, _, body = wires[1].partition(b"\r\n\r\n")
        self.assertEqual(c.pop("TOP 2 0"), "+OK")
        self.assertEqual(unstuff(c.raw_multi()), head + b"\r\n\r\n")
        self.assertEqual(c.pop("TOP 2 1"), "+OK")
        self.assertEqual(unstuff(c.raw_multi()), head + b"\r\n\r\n" + body.split(b"\r\n")[0] + b"\r\n")
        self.assertEqual(c.pop("TOP 2 x"), "-ERR Invalid number of lines.")
        self.assertEqual(c.pop("DELE 1"), "+OK Marked to be deleted.")
        self.assertEqual(c.pop("DELE 1"), "-ERR There's no message 1.")
        self.assertEqual(c.pop("RETR 1"), "-ERR There's no message 1.")
        self.assertEqual(c.pop("STAT"), f"+OK 2 {sizes[1] + sizes[2]}")
        self.assertEqual(c.pop_multi("LIST"), ("+OK 2 messages:", [f"2 {sizes[1]}", f"3 {sizes[2]}"]))
        self.assertEqual(c.pop_multi("UIDL"), ("+OK", [f"2 {msgs[1][0]}", f"3 {msgs[2][0]}"]))
        self.assertEqual(c.pop("RSET"), "+OK")
        self.assertEqual(c.pop("STAT"), f"+OK 3 {sum(sizes)}")
        self.assertEqual(c.pop("NOOP"), "+OK")
        self.assertEqual(c.pop_multi("CAPA"), ("+OK", CAPA_BASE))
        self.assertEqual(c.pop("DELE 2"), "+OK Marked to be deleted.")
        # Nothing is removed before QUIT.
        self.assertEqual(len(self.maildir_files("alice@example.org")), 3)
        self.assertEqual(c.pop("QUIT"), "+OK Logging out, messages deleted.")
        self.assertTrue(c.at_eof())
        self.assertEqual(sorted(self.maildir_files("alice@example.org")), sorted([msgs[0][1], msgs[2][1]]))

    def test_pipelined_commands(self):
        msgs = self.deliver("one", "two")
        c = self.raw("pop3")
        c.send(f"USER alice@example.org\r\nPASS {PASSWORD}\r\nSTAT\r\nUIDL 2\r\nNOOP\r\nQUIT\r\n")
        self.assertEqual(c.line(), "+OK")
        self.assertEqual(c.line(), "+OK Logged in.")
        self.assertRegex(c.line(), r"^\+OK 2 \d+$")
        self.assertEqual(c.line(), f"+OK 2 {msgs[1][0]}")
        self.assertEqual(c.line(), "+OK")
        self.assertEqual(c.line(), "+OK Logging out.")
        self.assertTrue(c.at_eof())

    def test_uidl_is_stable(self):
        [(uidl, name)] = self.deliver("kept")
        wire = self.wire("alice@example.org", name)
        self.assertNotIn(",", uidl)
        self.assertNotIn(":", uidl)

        def check(number=1, count=1):
            c = self.pop_session()
            self.assertEqual(c.pop(f"UIDL {number}"), f"+OK {number} {uidl}")
            self.assertEqual(c.pop(f"LIST {number}"), f"+OK {number} {len(wire)}")
            self.assertEqual(c.pop(f"RETR {number}"), f"+OK {len(wire)} octets")
            self.assertEqual(unstuff(c.raw_multi()), wire)
            self.assertEqual(c.pop("STAT")[:5], f"+OK {count}")
            self.assertEqual(c.pop("QUIT"), "+OK Logging out.")

        check()
        check()  # a second session
        self.restart_server()
        check()
        # A reader moved it to cur/ and flagged it seen: the same UIDL, size and bytes.
        os.rename(os.path.join(self.maildir("alice@example.org", "new"), name),
                  os.path.join(self.maildir("alice@example.org", "cur"), name + ":2,S"))
        check()
        # A later message gets its own UIDL; the first keeps its own.
        [(uidl2, _)] = self.deliver("later")
        self.assertNotEqual(uidl2, uidl)
        check(1, 2)
        c = self.pop_session()
        self.assertEqual(c.pop_multi("UIDL"), ("+OK", [f"1 {uidl}", f"2 {uidl2}"]))

    def test_dropped_connection_deletes_nothing_and_quota_follows_quit(self):
        msgs = self.deliver("a", "b", "c")
        before = self.maildir_files("alice@example.org")
        usage_before = self.quota("alice@example.org")
        self.assertEqual((usage_before["usage_bytes"], usage_before["usage_messages"]),
                         (sum(len(d) for _, d in before.values()), 3))
        c = self.pop_session()
        self.assertEqual(c.pop("DELE 1"), "+OK Marked to be deleted.")
        self.assertEqual(c.pop("DELE 3"), "+OK Marked to be deleted.")
        c.close()  # no QUIT
        self.wait_logout("disconnected")
        self.assertEqual(self.maildir_files("alice@example.org"), before)
        self.assertEqual(self.quota("alice@example.org")["usage_bytes"], usage_before["usage_bytes"])

        c = self.pop_session()  # the mailbox is free again
        self.assertEqual(c.pop("STAT")[:6], "+OK 3 ")
        self.assertEqual(c.pop("DELE 1"), "+OK Marked to be deleted.")
        self.assertEqual(c.pop("DELE 3"), "+OK Marked to be deleted.")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out, messages deleted.")
        left = self.maildir_files("alice@example.org")
        self.assertEqual(list(left), [msgs[1][1]])
        usage = self.quota("alice@example.org")
        self.assertEqual((usage["usage_bytes"], usage["usage_messages"]), (len(left[msgs[1][1]][1]), 1))
        fresh = self.recalc("alice@example.org")
        self.assertEqual((fresh["usage_bytes"], fresh["usage_messages"]), (usage["usage_bytes"], 1))
        [mb] = fresh["mailboxes"]
        self.assertEqual((mb["previous_bytes"], mb["previous_messages"]), (mb["usage_bytes"], mb["usage_messages"]))
        domain = self.quota("example.org")
        self.assertEqual(domain["usage_bytes"], usage["usage_bytes"])
        self.assertIn('logout client=127.0.0.1 user=alice@example.org retrieved=0 retrieved_bytes=0 deleted=2', self.log())

    def test_one_session_per_mailbox(self):
        self.deliver("x")
        first = self.pop_session()
        for service in ("pop3", "pop3s"):
            c = self.raw(service)
            self.assertEqual(c.pop("USER alice@example.org"), "+OK")
            self.assertEqual(c.pop("PASS " + PASSWORD), IN_USE)
        second = self.raw("pop3")
        self.assertEqual(second.pop("AUTH PLAIN " + plain("alice@example.org", PASSWORD)), IN_USE)
        # Another mailbox is not affected.
        other = self.pop_session("bob@example.org")
        self.assertEqual(other.pop("STAT"), "+OK 0 0")
        # The first session's connection dies: its lock goes with it.
        self.assertEqual(first.pop("DELE 1"), "+OK Marked to be deleted.")
        first.close()
        deadline = time.time() + 10
        while True:
            self.assertEqual(second.pop("USER alice@example.org"), "+OK")
            reply = second.pop("PASS " + PASSWORD)
            if reply != IN_USE or time.time() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(reply, "+OK Logged in.")
        self.assertEqual(second.pop("STAT")[:6], "+OK 1 ")
        self.assertEqual(second.pop("QUIT"), "+OK Logging out.")
        self.assertEqual(len(self.maildir_files("alice@example.org")), 1)

    def test_message_purged_during_a_session(self):
        msgs = self.deliver("one", "two", "three")
        c = self.pop_session()
        self.assertEqual(c.pop("UIDL 2"), f"+OK 2 {msgs[1][0]}")
        r = self.run_tool("mh-purge", "alice@example.org", "--uid", msgs[1][0])
        self.assertExit(r, 0)
        self.assertEqual(sorted(self.maildir_files("alice@example.org")), sorted([msgs[0][1], msgs[2][1]]))
        self.assertEqual(c.pop("RETR 2"), "-ERR Message 2 is no longer available.")
        self.assertEqual(c.pop("TOP 2 0"), "-ERR Message 2 is no longer available.")
        self.assertEqual(c.pop("NOOP"), "+OK")
        wire3 = self.wire("alice@example.org", msgs[2][1])
        self.assertEqual(c.pop("RETR 3"), f"+OK {len(wire3)} octets")
        self.assertEqual(unstuff(c.raw_multi()), wire3)
        self.assertEqual(c.pop("DELE 2"), "+OK Marked to be deleted.")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out, messages deleted.")
        self.assertEqual(sorted(self.maildir_files("alice@example.org")), sorted([msgs[0][1], msgs[2][1]]))
        fresh = self.recalc("alice@example.org")
        [mb] = fresh["mailboxes"]
        self.assertEqual((mb["previous_bytes"], mb["previous_messages"]), (mb["usage_bytes"], 2))

    def test_dot_stuffed_message_comes_back_as_sent(self):
        body = (".leading dot\r\n..two dots\r\n.\r\n. \r\n...\r\nmiddle . dot\r\n"
                ".\r\nlast line.\r\n")
        original = msg("dots", body)
        [name] = self.send_mail("alice@example.org", original)  # smtplib dot-stuffs it
        wire = self.wire("alice@example.org", name)
        self.assertTrue(wire.endswith(original), wire)
        c = self.pop_session()
        self.assertEqual(c.pop("RETR 1"), f"+OK {len(wire)} octets")
        raw = c.raw_multi()
        # On the wire every line that starts with '.' got one more (RFC 1939 §3).
        self.assertIn(b"\r\n..leading dot\r\n...two dots\r\n..\r\n.. \r\n....\r\nmiddle . dot\r\n..\r\nlast line.\r\n.\r\n",
                      raw)
        self.assertEqual(unstuff(raw), wire)
        self.assertEqual(c.pop("TOP 1 3"), "+OK")
        head = wire.partition(b"\r\n\r\n")[0]
        self.assertEqual(unstuff(c.raw_multi()), head + b"\r\n\r\n.leading dot\r\n..two dots\r\n.\r\n")
        self.assertEqual(c.pop("QUIT"), "+OK Logging out.")
        p = self.poplib_client("pop3")
        p.user("alice@example.org")
        p.pass_(PASSWORD)
        _, lines, _ = p.retr(1)
        self.assertEqual(b"\r\n".join(lines) + b"\r\n", wire)
        p.quit()


if __name__ == "__main__":
    mhtest.main()
