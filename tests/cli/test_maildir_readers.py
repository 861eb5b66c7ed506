"""Maildirs written by libspool are read correctly by readers we did not write (SPEC §2:
"Maildirs must stay readable by Dovecot and mutt unchanged"): Python's mailbox.Maildir,
mutt, and Dovecot (doveadm) each see every message byte for byte, and after each of them
moves messages new/ -> cur/ with flags, libspool still lists them under the same UIDLs
with exact usage. Mail is put in with tests/tools/mh-test-deliver (MH_TEST_BIN).
mutt and doveadm tests are skipped when the program is not installed (packages: mutt,
dovecot-core)."""

import fcntl
import json
import mailbox
import os
import pty
import pwd
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

TEST_BIN = os.environ.get("MH_TEST_BIN", os.path.join(mhtest.SOURCE, "build", "tests"))
DELIVER = os.path.join(TEST_BIN, "mh-test-deliver")

# Messages chosen for what tends to break readers: 8-bit UTF-8, an encoded subject, a
# body far larger than one write buffer, mbox "From " and POP3 "." lines, CRLF endings.
MESSAGES = [
    b"From: Alice <alice@example.org>\nTo: a@example.com\nSubject: plain\n"
    b"Message-ID: <m1@example.org>\nDate: Mon, 01 Jan 2024 10:00:00 +0000\n\nHello.\n",
    "From: b@example.org\nSubject: =?UTF-8?B?5pel5pys6Kqe?=\nMIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n"
    "Date: Mon, 01 Jan 2024 10:01:00 +0000\n\nGrüße, 日本語, ☃\n".encode("utf-8"),
    b"From: c@example.org\nSubject: big\nDate: Mon, 01 Jan 2024 10:02:00 +0000\n\n"
    + b"".join(b"line %06d of a long body .........................................\n" % i
               for i in range(5000)),
    b"From: d@example.org\nSubject: hazards\nDate: Mon, 01 Jan 2024 10:03:00 +0000\n\n"
    b"From the start of a line\n.\n..\n>From quoted\nend\n",
    b"From: e@example.org\r\nSubject: crlf\r\nDate: Mon, 01 Jan 2024 10:04:00 +0000\r\n\r\n"
    b"windows line endings\r\n",
]
def header_and_body(message):
    """(header block, body) split at the first empty line. mutt pipes a CRLF message's
    empty separator line as a bare LF, so the separator itself is left out."""
    cut = min(i for i in (message.find(b"\n\n"), message.find(b"\n\r\n")) if i >= 0)
    rest = message[cut + 1:]
    return message[:cut + 1], rest[2:] if rest.startswith(b"\r\n") else rest[1:]


READERS = ["python@example.com", "mutt@example.com", "dovecot@example.com"]


class MaildirReadersTest(mhtest.SpoolTestCase):

    def setUp(self):
        super().setUp()
        if not os.path.exists(DELIVER):
            self.fail(f"{DELIVER} is missing: build the mh-test-deliver target")
        self.add_domain("example.com")
        for address in READERS:
            self.add_account(address)
        # Every message goes to all three accounts in one delivery: one file, three links.
        self.uidl_of = {}
        for body in MESSAGES:
            outcomes = self.deliver(body, *READERS)
            self.assertEqual({o["status"] for o in outcomes}, {"delivered"}, outcomes)
            self.assertEqual(len({o["uidl"] for o in outcomes}), 1, outcomes)
            self.uidl_of[outcomes[0]["uidl"]] = body

    def deliver(self, body, *addresses):
        proc = subprocess.run([DELIVER, *addresses], input=body, capture_output=True,
                              env=dict(os.environ, MH_SPOOL=self.spool), timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr.decode())
        return json.loads(proc.stdout)["outcomes"]

    def libspool_view(self, address, *extra):
        proc = subprocess.run([DELIVER, "--list", "--recalc", *extra, address], capture_output=True,
                              text=True, env=dict(os.environ, MH_SPOOL=self.spool), timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def maildir(self, address):
        local, domain = address.split("@")
        return self.path("domains", domain, "accounts", local, "Maildir")

    def assert_libspool_sees_all(self, address, expect_in_new):
        """Same UIDLs, sizes and usage as delivered, whatever the reader renamed."""
        view = self.libspool_view(address)
        listed = {m["uidl"]: m for m in view["messages"]}
        self.assertEqual(set(listed), set(self.uidl_of))
        for uidl, body in self.uidl_of.items():
            self.assertEqual(listed[uidl]["size"], len(body), uidl)
            self.assertEqual(listed[uidl]["in_new"], expect_in_new, listed[uidl])
        total = {"bytes": sum(map(len, MESSAGES)), "messages": len(MESSAGES)}
        self.assertEqual(view["usage"], total)
        self.assertEqual(view["recalc"], total)
        return listed

    # --- Python's mailbox ---

    def test_python_mailbox_reads_every_message(self):
        mb = mailbox.Maildir(self.maildir("python@example.com"), factory=None, create=False)
        keys = mb.keys()
        self.assertEqual(len(keys), len(MESSAGES))
        for key in keys:
            uidl = key.split(",")[0]
            self.assertIn(uidl, self.uidl_of)
            self.assertEqual(mb.get_bytes(key), self.uidl_of[uidl])
            self.assertEqual(mb.get_message(key).get_subdir(), "new")
        self.assertEqual(sorted(mb.get_message(k)["Subject"] for k in keys),
                         sorted(["plain", "=?UTF-8?B?5pel5pys6Kqe?=", "big", "hazards", "crlf"]))

    def test_python_mailbox_moves_to_cur_and_uidls_survive(self):
        address = "python@example.com"
        mb = mailbox.Maildir(self.maildir(address), factory=None, create=False)
        for key in mb.keys():
            msg = mb[key]
            msg.set_subdir("cur")
            msg.add_flag("S")
            mb[key] = msg  # Python rewrites the file and renames it to cur/<key>:2,S
        names = os.listdir(os.path.join(self.maildir(address), "cur"))
        self.assertEqual(len(names), len(MESSAGES))
        self.assertTrue(all(n.endswith(":2,S") for n in names), names)
        self.assertEqual(os.listdir(os.path.join(self.maildir(address), "new")), [])
        listed = self.assert_libspool_sees_all(address, expect_in_new=False)
        # libspool can remove what Python moved, and usage stays exact.
        victim = next(iter(listed))
        view = self.libspool_view(address, "--remove", victim)
        self.assertEqual(view["removed"], [victim])
        left = {"bytes": sum(map(len, MESSAGES)) - len(self.uidl_of[victim]),
                "messages": len(MESSAGES) - 1}
        self.assertEqual(view["usage"], left)
        self.assertEqual(view["recalc"], left)
        mb = mailbox.Maildir(self.maildir(address), factory=None, create=False)
        self.assertEqual(len(mb.keys()), len(MESSAGES) - 1)

    # --- mutt ---

    def run_mutt(self, maildir, commands, timeout=60):
        """mutt needs a terminal: run it on a pty with a private muttrc whose last line
        pushes the keys to press; return its exit code and the screen output."""
        rc = os.path.join(self.tmp, "muttrc")
        # An existing $folder: otherwise mutt first asks "~/Mail does not exist. Create
        # it?" and that prompt swallows the pushed keys.
        folder = os.path.join(self.tmp, "mutt-folder")
        os.makedirs(folder, exist_ok=True)
        with open(rc, "w") as f:
            f.write("\n".join([f'set folder="{folder}"', *commands]) + "\n")
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        env = dict(os.environ, TERM="vt100", HOME=self.tmp)
        for size in ("LINES", "COLUMNS"):
            env.pop(size, None)
        proc = subprocess.Popen(["mutt", "-n", "-F", rc, "-f", maildir], stdin=slave, stdout=slave,
                                stderr=slave, env=env, close_fds=True)
        os.close(slave)
        screen = b""
        deadline = time.time() + timeout
        try:
            while proc.poll() is None and time.time() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        screen += os.read(master, 65536)
                    except OSError:
                        break
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            os.close(master)
        return proc.returncode, screen.decode("latin-1")

    @unittest.skipUnless(shutil.which("mutt"), "mutt is not installed")
    def test_mutt_reads_every_message_and_marks_them_read(self):
        address = "mutt@example.com"
        out = os.path.join(self.tmp, "piped")
        sep = "=====MUTT-SEPARATOR====="
        code, screen = self.run_mutt(self.maildir(address), [
            "set pipe_split=yes", "set pipe_decode=no", "set wait_key=no",
            f'set pipe_sep="{sep}\\n"', "set mark_old=no", "set quit=yes", "set move=no",
            "set sort=mailbox-order",
            # Tag all, pipe each raw message to a file, mark all read, write back, quit.
            f'push "<tag-pattern>~A<enter><tag-prefix><pipe-message>cat >> {out}<enter>'
            '<tag-prefix><clear-flag>N<sync-mailbox><quit>"',
        ])
        self.assertEqual(code, 0, screen[-2000:])
        with open(out, "rb") as f:
            piped = f.read().split(sep.encode() + b"\n")
        self.assertEqual(piped[-1], b"", screen)
        self.assertEqual(sorted(map(header_and_body, piped[:-1])),
                         sorted(map(header_and_body, MESSAGES)), screen[-2000:])
        # mutt moved every message to cur/ with the Seen flag; libspool follows.
        names = os.listdir(os.path.join(self.maildir(address), "cur"))
        self.assertEqual(len(names), len(MESSAGES), screen[-2000:])
        self.assertTrue(all(n.endswith(":2,S") for n in names), names)
        self.assert_libspool_sees_all(address, expect_in_new=False)

    # --- Dovecot ---

    def doveadm(self, *args):
        conf = os.path.join(self.tmp, "dovecot.conf")
        if not os.path.exists(conf):
            self.write_dovecot_conf(conf)
        env = dict(os.environ, USER="tester", HOME=self.tmp)
        proc = subprocess.run(["doveadm", "-c", conf, "-f", "json", *args], capture_output=True,
                              text=True, env=env, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("Error", proc.stderr)  # Dovecot logs e.g. wrong ,S= sizes here
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def write_dovecot_conf(self, conf):
        """A standalone Dovecot config for one Maildir. Dovecot refuses to access mail as
        root, so when we are root the spool is handed to `nobody` (our tools then act as
        that owner too, SPEC §2). maildir_empty_new makes Dovecot move new/ to cur/ the
        way an IMAP client's SELECT does (a doveadm session does not take \\Recent)."""
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            os.chmod(self.tmp, 0o711)
            for root, dirs, files in os.walk(self.spool):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)
            os.lchown(self.spool, user.pw_uid, user.pw_gid)
        else:
            user = pwd.getpwuid(os.geteuid())
        run_dir = os.path.join(self.tmp, "dovecot-run")
        os.makedirs(run_dir, exist_ok=True)
        with open(conf, "w") as f:
            f.write(f"""ssl = no
first_valid_uid = 0
first_valid_gid = 0
mail_uid = {user.pw_uid}
mail_gid = {user.pw_gid}
mail_location = maildir:{self.maildir("dovecot@example.com")}
maildir_empty_new = yes
base_dir = {run_dir}
log_path = /dev/stderr
""")

    @unittest.skipUnless(shutil.which("doveadm"), "doveadm (dovecot-core) is not installed")
    def test_dovecot_reads_every_message_and_uidls_survive_its_flags(self):
        address = "dovecot@example.com"
        fetched = self.doveadm("fetch", "guid size.physical text flags", "all")
        self.assertEqual(len(fetched), len(MESSAGES))
        for m in fetched:
            uidl = m["guid"].split(",")[0]  # Dovecot's maildir GUID is the base file name
            self.assertIn(uidl, self.uidl_of)
            body = self.uidl_of[uidl]
            self.assertEqual(int(m["size.physical"]), len(body))
            self.assertEqual(m["text"], body.decode("utf-8"))

        self.doveadm("flags", "add", "\\Seen", "all")  # Dovecot renames to cur/...:2,S
        names = os.listdir(os.path.join(self.maildir(address), "cur"))
        self.assertEqual(len(names), len(MESSAGES))
        self.assertTrue(all(n.endswith(":2,S") for n in names), names)
        listed = self.assert_libspool_sees_all(address, expect_in_new=False)

        # A message libspool removes is gone for Dovecot too; its index copes.
        victim = next(iter(listed))
        self.assertEqual(self.libspool_view(address, "--remove", victim)["removed"], [victim])
        fetched = self.doveadm("fetch", "guid flags", "all")
        self.assertEqual({m["guid"].split(",")[0] for m in fetched}, set(self.uidl_of) - {victim})
        self.assertTrue(all("\\Seen" in m["flags"] for m in fetched), fetched)

        # And a message delivered after Dovecot built its index shows up as new.
        outcomes = self.deliver(b"Subject: late\n\nlate\n", address)
        fetched = self.doveadm("fetch", "guid", "all")
        self.assertIn(outcomes[0]["uidl"], {m["guid"].split(",")[0] for m in fetched})


if __name__ == "__main__":
    mhtest.main()
