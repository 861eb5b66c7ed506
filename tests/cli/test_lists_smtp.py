"""Mailing lists end to end (SPEC §7, the lists issue): posts arrive over real SMTP
(smtplib) at mh-serve, the queue runner hands them to the list processor, local
members read their copy over POP3 (poplib) and remote members' copies — and every mail
the list writes itself (error mails, confirmation requests, notices) — are captured by
a real aiosmtpd peer behind relay.host. Lists are made with the real mh-list. Each test
has its own spool, server, ports and peer.

Every test checks the exact texts (reply, reason, headers) and that nothing was lost
or doubled: who got how many copies, the archive, the sequence number, an empty queue
at the end and no further mail at the peer ("quiet")."""

import os
import re
import time

import mhtest_lists as ml
import test_outbound_relay as relay
from mhtest_lists import (BOUNCES, LIST, MAIL_BOMB, NOT_MEMBER, ONE_LINE, REJECTED, TOO_LARGE, TOO_LARGE_JA,
                          UNSUBSCRIBE, ListCase, header, make_dsn, parse, post_message, text_parts)
from mhtest_mail import PASSWORD

ALICE, BOB = "alice@example.org", "bob@example.org"         # local accounts (MailTestCase)
CAROL, DAVE = "carol@remote.test", "dave@remote.test"       # remote
MOD, ADMIN = "mod@remote.test", "admin@remote.test"
OUTSIDER = "outsider@remote.test"


def confirm_address(msg):
    """The LIST+confirm-TOKEN address of a confirmation request, checked to be both its
    From: and its Reply-To:; returns (address, token)."""
    addrs = {}
    for field in ("From", "Reply-To"):
        value = msg[field]
        assert value is not None, f"no {field}: in the confirmation request"
        [a] = value.addresses
        addrs[field] = a.addr_spec
    assert addrs["From"] == addrs["Reply-To"], addrs
    m = ml.CONFIRM_RE.match(addrs["Reply-To"])
    assert m, f"not ml+confirm-TOKEN@example.org (20 lower-case hex digits): {addrs['Reply-To']}"
    return addrs["Reply-To"], m.group(1)


def html_reply(sender, to, subject="Re: confirm"):
    """What a mail client in HTML mode sends back: text/html only, the request quoted."""
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
            "<html><body><p>OK, approved.</p><blockquote><p>Reply to this mail to confirm.</p>"
            "</blockquote></body></html>\r\n").encode()


def plain_reply(sender, to, subject="Re: confirm"):
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\nyes\r\n\r\n"
            "> Reply to this mail to confirm.\r\n").encode()


# --- distribution ----------------------------------------------------------------------

class Distribution(ListCase):
    def test_post_reaches_local_and_remote_members_once(self):
        self.make_list(members=[ALICE, BOB, CAROL, DAVE])
        self.start()
        data, marker = post_message("hello list", sender=CAROL)
        qid = self.post(data, sender=CAROL)
        detail = self.detail(qid)
        self.assertTrue(detail.startswith("distributed as ml@example.org #1: "), detail)
        self.wait_peer(CAROL)
        self.wait_peer(DAVE)
        self.settle()

        # Remote members: each exactly once, from LIST+bounces, the list's headers on.
        for who in (CAROL, DAVE):
            with self.subTest(remote=who):
                [t] = self.at_peer(who)
                self.assertEqual(t["from"], BOUNCES)
                self.assertDistributed(t["data"], 1, "[ml:00001] hello list", marker)
                head = t["data"].replace(b"\r\n", b"\n").partition(b"\n\n")[0].decode("latin-1")
                self.assertNotRegex(head, r"(?im)^return-path:", "a Return-Path went out with the relayed copy")
        self.assertEqual(sorted(r for t in self.peer.transactions for r in t["to"]), [CAROL, DAVE],
                         self.peer.transactions)
        for o in self.outcomes():
            if o["rcpt"] in (CAROL, DAVE):
                self.assertEqual((o["status"], o["relay"]), ("sent", f"127.0.0.1:{self.relay_port}"), o)

        # Local members: one stored copy, hard-linked with the archive's file.
        archived = self.archive_file(1)
        self.assertTrue(os.path.isfile(archived), self.archived())
        self.assertEqual(self.archived(), ["00000001"])
        st = os.stat(archived)
        with open(archived, "rb") as f:
            stored = f.read()
        for who in (ALICE, BOB):
            with self.subTest(local=who):
                files = self.maildir_all(who)
                self.assertEqual(len(files), 1, files)
                sub, name, data_ = files[0]
                path = os.path.join(self.maildir(who, sub), name)
                self.assertEqual(os.stat(path).st_ino, st.st_ino, "the member's copy is not the archive's inode")
                self.assertEqual(data_, stored)
                self.assertEqual(header(data_, "Return-Path"), f"<{BOUNCES}>")
                self.assertDistributed(data_, 1, "[ml:00001] hello list", marker)
        # The archive and the two members: no other link is left (the queue's are gone).
        self.assertEqual(os.stat(archived).st_nlink, 3)
        self.assertEqual(self.seq(), 1)
        self.assertEqual(self.count_all_messages(), 3)  # alice, bob, the archive

        # What the local members read over POP3 is the distributed post.
        for who in (ALICE, BOB):
            with self.subTest(pop3=who):
                p = self.poplib_client("pop3")
                p.user(who)
                p.pass_(PASSWORD)
                count, _ = p.stat()
                self.assertEqual(count, 1)
                _, lines, _ = p.retr(1)
                got = b"\r\n".join(lines) + b"\r\n"
                self.assertDistributed(got, 1, "[ml:00001] hello list", marker)
                self.assertEqual(got.replace(b"\r\n", b"\n"), stored.replace(b"\r\n", b"\n"))
                p.quit()

        # One processing of the post, nothing else distributed.
        self.assertEqual([(o["rcpt"], o["status"]) for o in self.outcomes(qid)], [(LIST, "sent")])
        r = self.mhlist("archive", LIST, "1")
        self.assertIn(f"marker {marker}", r.out)

    def test_subject_tag_reply_retag_and_configured_tag(self):
        self.make_list(members=[ALICE, CAROL, DAVE])
        self.start()
        sent = [  # (poster, subject, wanted subject)
            (CAROL, "hello", "[ml:00001] hello"),
            (DAVE, "Re: [ml:00001] hello", "[ml:00002] Re: hello"),
        ]
        markers = []
        for poster, subject, _ in sent:
            data, marker = post_message(subject, sender=poster)
            qid = self.post(data, sender=poster)
            self.assertTrue(self.detail(qid).startswith(f"distributed as ml@example.org #{len(markers) + 1}: "))
            markers.append(marker)
        # A configured tag, then a reply to it, then no tag at all.
        self.mhlist("set", LIST, "--subject-tag", "({list} {seq})")
        more = [
            (CAROL, "third", "(ml 00003) third"),
            (DAVE, "Re: (ml 00003) third", "(ml 00004) Re: third"),
        ]
        for poster, subject, _ in more:
            data, marker = post_message(subject, sender=poster)
            qid = self.post(data, sender=poster)
            self.assertTrue(self.detail(qid).startswith(f"distributed as ml@example.org #{len(markers) + 1}: "))
            markers.append(marker)
        self.mhlist("set", LIST, "--subject-tag", "")
        # alice posts as herself (a member) over submission.
        data, marker = post_message("plain subject", sender=ALICE)
        qid = self.submit_as(ALICE, data)
        self.assertTrue(self.detail(qid).startswith("distributed as ml@example.org #5: "))
        markers.append(marker)
        wanted = [w for _, _, w in sent + more] + ["plain subject"]

        got = self.wait_peer(DAVE, 5)
        self.settle()
        self.assertEqual(len(self.at_peer(DAVE)), 5)
        by_count = {int(header(t["data"], "X-Mail-Count")): t["data"] for t in got}
        self.assertEqual(sorted(by_count), [1, 2, 3, 4, 5])
        for n, (want, marker) in enumerate(zip(wanted, markers), start=1):
            with self.subTest(seq=n):
                self.assertEqual(header(by_count[n], "Subject"), want)
                self.assertIn(f"marker {marker}".encode(), by_count[n])
        # alice's Maildir: the same five, each once.
        alice = [d for _, _, d in self.maildir_all(ALICE)]
        self.assertEqual(sorted(int(header(d, "X-Mail-Count")) for d in alice), [1, 2, 3, 4, 5])
        self.assertEqual(sorted(header(d, "Subject") for d in alice), sorted(wanted))
        self.assertEqual(self.archived(), [f"{n:08d}" for n in range(1, 6)])
        self.assertEqual(self.seq(), 5)

    def test_remote_members_in_several_queue_entries_leave_promptly(self):
        # 250 remote members: 3 queue entries of at most 100 (SPEC §10), due at once.
        # SPEC §8: the runner acts on a change within 1 s; none of the three may wait
        # for another (a serial run with a 5 s retry between entries needs >= 10 s).
        remotes = [f"m{i:03d}@d{i % 5}.remote.test" for i in range(250)]
        self.make_list(members=remotes)
        self.start()
        data, marker = post_message("to many", sender=remotes[0])
        qid = self.post(data, sender=remotes[0])
        detail = self.detail(qid)
        self.assertRegex(detail, r"^distributed as ml@example\.org #1: 0 local member\(s\) delivered, 250 remote in "
                                 r"3 queue entries")
        t0 = time.monotonic()
        self.wait_until(lambda: len({r for t in self.peer.transactions for r in t["to"]}) >= 250, 60,
                        "all 250 remote copies")
        took = time.monotonic() - t0
        self.settle()
        got = sorted(r for t in self.peer.transactions for r in t["to"])
        self.assertEqual(got, sorted(remotes))  # each once
        self.assertLess(took, 4.0, f"the 3 queue entries took {took:.1f} s to leave after the distribution")

    def test_recipient_delimiter_delivers_to_the_account(self):
        self.start()
        data, marker = post_message("for alice", sender=CAROL, to="alice+lists@example.org")
        self.post(data, sender=CAROL, rcpts=["alice+lists@example.org"])
        data2, marker2 = post_message("for bob", sender=CAROL, to="Bob+Some.Thing-else@example.org")
        self.post(data2, sender=CAROL, rcpts=["Bob+Some.Thing-else@example.org"])
        [a] = [d for _, _, d in self.maildir_all(ALICE)]
        [b] = [d for _, _, d in self.maildir_all(BOB)]
        self.assertIn(f"marker {marker}".encode(), a)
        self.assertIn(f"marker {marker2}".encode(), b)
        self.assertEqual(self.queue_ids(), [])
        self.quiet(0.5)
        self.assertEqual(self.peer.transactions, [])


# --- posting policies ------------------------------------------------------------------

class Policies(ListCase):
    def test_members_policy_refuses_non_members_with_an_error_mail(self):
        self.make_list(members=[ALICE, DAVE])
        self.start()
        data, marker = post_message("from outside", sender=OUTSIDER)
        qid = self.post(data, sender=OUTSIDER)
        detail = self.detail(qid)
        self.assertRegex(detail, rf"^refused \({re.escape(NOT_MEMBER)}\): error mail to <{re.escape(OUTSIDER)}> "
                                 r"queued as [0-9A-Za-z]+$")
        [t] = self.wait_peer(OUTSIDER)
        self.assertEqual((t["from"], t["to"]), ("", [OUTSIDER]))
        self.assertErrorMail(t["data"], OUTSIDER, NOT_MEMBER, marker)
        # A local non-member (bob): the error mail lands in his Maildir, from <>.
        data2, marker2 = post_message("from bob", sender=BOB)
        qid2 = self.submit_as(BOB, data2)
        self.assertRegex(self.detail(qid2), rf"^refused \({re.escape(NOT_MEMBER)}\): error mail to <{re.escape(BOB)}>")
        self.wait_until(lambda: self.maildir_all(BOB), 10, "the error mail in bob's Maildir")
        self.settle()
        [(_, _, got)] = self.maildir_all(BOB)
        self.assertEqual(header(got, "Return-Path"), "<>")
        self.assertErrorMail(got, BOB, NOT_MEMBER, marker2)
        # Nothing was distributed.
        self.assertEqual(len(self.peer.transactions), 1, self.peer.transactions)
        self.assertEqual(self.maildir_all(ALICE), [])
        self.assertEqual((self.archived(), self.seq()), ([], 0))

    def test_an_error_mail_that_bounces_is_not_answered(self):
        # The peer refuses bad@ with 550: the error mail to that poster fails for good,
        # and since the list sends it from the null sender no DSN follows (no loop).
        bad = "bad@remote.test"
        self.make_list(members=[DAVE])
        self.start()
        data, marker = post_message("from a dead address", sender=bad)
        detail = self.detail(self.post(data, sender=bad))
        m = re.match(rf"^refused \({re.escape(NOT_MEMBER)}\): error mail to <{re.escape(bad)}> queued as ([0-9A-Za-z]+)$",
                     detail)
        self.assertIsNotNone(m, detail)
        error_id = m.group(1)
        self.assertEqual([(o["rcpt"], o["status"]) for o in self.list_outcome_all(error_id)], [(bad, "bounced")])
        self.wait_until(lambda: relay.NO_DSN_RE.search(self.log()), 10, "the 'no DSN' log line")
        self.settle()
        self.assertEqual(self.dsn_lines(), [])
        self.assertEqual(self.peer.transactions, [])
        self.assertEqual([e[1] for e in self.peer.events if e[0] == "RCPT"], [bad])  # tried once
        self.assertEqual((self.archived(), self.seq()), ([], 0))

    def list_outcome_all(self, qid):
        self.wait_until(lambda: [o for o in self.outcomes(qid) if o["status"] != "deferred"], 20, f"the outcome of {qid}")
        return self.outcomes(qid)

    def test_anyone_policy_distributes_a_non_member_post(self):
        self.make_list(members=[ALICE, DAVE], policy="anyone")
        self.start()
        data, marker = post_message("open list", sender=OUTSIDER)
        qid = self.post(data, sender=OUTSIDER)
        self.assertTrue(self.detail(qid).startswith("distributed as ml@example.org #1: "))
        [t] = self.wait_peer(DAVE)
        self.settle()
        self.assertEqual(t["from"], BOUNCES)
        self.assertDistributed(t["data"], 1, "[ml:00001] open list", marker)
        [(_, _, a)] = self.maildir_all(ALICE)
        self.assertDistributed(a, 1, "[ml:00001] open list", marker)
        self.assertEqual(self.at_peer(OUTSIDER), [])  # not a member: no copy, no error mail
        self.assertEqual(len(self.peer.transactions), 1)

    def test_moderators_policy_without_moderators_forwards_to_admin(self):
        self.make_list(members=[ALICE, DAVE], policy="moderators", admin=ADMIN)
        self.start()
        data, marker = post_message("for the admin", sender=CAROL)
        qid = self.post(data, sender=CAROL)
        detail = self.detail(qid)
        self.assertIn(f"<{ADMIN}>", detail)
        [t] = self.wait_peer(ADMIN)
        self.settle()
        self.assertEqual(t["to"], [ADMIN])
        self.assertIn(f"marker {marker}".encode(), t["data"])
        self.assertEqual(header(t["data"], "Subject"), "for the admin")  # forwarded as it is, not distributed
        self.assertEqual(len(self.peer.transactions), 1, self.peer.transactions)
        self.assertEqual(self.maildir_all(ALICE), [])
        self.assertEqual((self.archived(), self.seq()), ([], 0))
        self.assertEqual(self.pending(), [])


# --- moderation ------------------------------------------------------------------------

class Moderation(ListCase):
    def setUp(self):
        super().setUp()
        self.make_list(members=[BOB, DAVE], moderators=[MOD], policy="moderators")

    def confirmation(self, n=1):
        """The n-th confirmation request the moderator got: (parsed, confirm address, token)."""
        ts = self.wait_peer(MOD, n)
        t = ts[n - 1]
        self.assertEqual((t["from"], t["to"]), ("", [MOD]))
        msg = parse(t["data"])
        self.assertEqual(msg.defects, [])
        address, token = confirm_address(msg)
        return t, msg, address, token

    def test_html_reply_to_the_confirmation_approves_once(self):
        self.start()
        data, marker = post_message("needs approval", sender=CAROL)
        qid = self.post(data, sender=CAROL)
        detail = self.detail(qid)
        m = re.match(r"^held for moderation as ([0-9a-f]{20});", detail)
        self.assertIsNotNone(m, detail)
        t, msg, address, token = self.confirmation()
        self.assertEqual(token, m.group(1))
        # Plain text: multipart/mixed of text/plain and the post as message/rfc822.
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "message/rfc822"])
        self.assertNotIn("text/html", [p.get_content_type() for p in msg.walk()])
        explanation = parts[0].get_content()
        self.assertIn(CAROL, explanation)
        self.assertIn(LIST, explanation)
        [inner] = parts[1].get_payload()
        self.assertEqual(inner["Message-ID"], f"<{marker}@remote.test>")
        self.assertIn(f"marker {marker}", inner.get_content())
        [item] = self.pending()
        self.assertEqual((item["id"], item["kind"], item["poster"]), (token, "post", CAROL))
        # Held: nobody has it yet.
        self.assertEqual((self.at_peer(DAVE), self.maildir_all(BOB), self.archived()), ([], [], []))

        # The moderator's mail client answers in HTML: that confirms.
        cqid = self.post(html_reply(MOD, address), sender=MOD, rcpts=[address])
        self.assertTrue(self.detail(cqid, rcpt=address).startswith(f"approved post {token} "),
                        self.detail(cqid, rcpt=address))
        [d] = self.wait_peer(DAVE)
        self.wait_until(lambda: self.maildir_all(BOB), 10, "bob's copy")
        self.settle()
        self.assertEqual(d["from"], BOUNCES)
        self.assertDistributed(d["data"], 1, "[ml:00001] needs approval", marker)
        [(_, _, b)] = self.maildir_all(BOB)
        self.assertDistributed(b, 1, "[ml:00001] needs approval", marker)
        self.assertEqual(self.pending(), [])
        self.assertEqual(self.seq(), 1)
        before = list(self.peer.transactions)

        # A second reply (plain this time) does nothing: no mail, no second distribution.
        cqid2 = self.post(plain_reply(MOD, address), sender=MOD, rcpts=[address])
        self.assertTrue(self.detail(cqid2, rcpt=address).startswith("confirmation ignored: "),
                        self.detail(cqid2, rcpt=address))
        self.wait_queue_empty()
        self.quiet(2)
        self.assertEqual(self.peer.transactions, before)
        self.assertEqual(len(self.maildir_all(BOB)), 1)
        self.assertEqual((self.seq(), self.archived()), (1, ["00000001"]))
        self.assertEqual(self.queue_ids(), [])

    def test_mh_list_pending_approve_and_reject(self):
        self.start()
        posts = []
        for subject in ("first held", "second held"):
            data, marker = post_message(subject, sender=CAROL)
            qid = self.post(data, sender=CAROL)
            token = re.match(r"^held for moderation as ([0-9a-f]{20});", self.detail(qid)).group(1)
            posts.append((token, marker, subject))
        self.wait_peer(MOD, 2)
        pending = {p["id"]: p for p in self.pending()}
        self.assertEqual(sorted(pending), sorted(t for t, _, _ in posts))
        for token, _, subject in posts:
            self.assertEqual((pending[token]["subject"], pending[token]["poster"]), (subject, CAROL))
        r = self.mhlist("pending", LIST)
        for token, _, _ in posts:
            self.assertIn(token, r.out)

        (t1, m1, _), (t2, m2, _) = posts
        self.mhlist("approve", LIST, t1)
        [d] = self.wait_peer(DAVE)
        self.assertDistributed(d["data"], 1, "[ml:00001] first held", m1)
        self.mhlist("reject", LIST, t2)
        [e] = self.wait_peer(CAROL)
        self.assertEqual((e["from"], e["to"]), ("", [CAROL]))
        self.assertErrorMail(e["data"], CAROL, REJECTED, m2)
        self.wait_until(lambda: self.maildir_all(BOB), 10, "bob's copy")
        self.settle()
        self.assertEqual(self.pending(), [])
        # Decided once: both ids are gone (67), nothing more is sent.
        for token in (t1, t2):
            for verb in ("approve", "reject"):
                self.mhlist(verb, LIST, token, expect=67)
        self.quiet(1.5)
        self.assertEqual(len(self.at_peer(DAVE)), 1)
        self.assertEqual(len(self.maildir_all(BOB)), 1)
        self.assertEqual((self.seq(), self.archived()), (1, ["00000001"]))
        self.assertEqual(len(self.peer.transactions), 4)  # 2 requests, 1 post, 1 rejection
        self.assertEqual(self.queue_ids(), [])


# --- refusals --------------------------------------------------------------------------

class Refusals(ListCase):
    def refused(self, qid, reason, poster):
        detail = self.detail(qid)
        self.assertRegex(detail, rf"^refused \({re.escape(reason)}\): error mail to <{re.escape(poster)}> "
                                 r"queued as [0-9A-Za-z]+$")

    def error_mails(self, who):
        return [t for t in self.at_peer(who) if t["from"] == ""]

    def posts_to(self, who):
        return [t for t in self.at_peer(who) if t["from"] == BOUNCES]

    def test_one_line_mail_body(self):
        self.make_list(members=[CAROL, DAVE], bomb="100/5m")
        self.start()
        one_liners = [
            "please add me to the list\r\n",
            "\r\n\r\nSubscribe carol@remote.test, thanks: ok-then\r\n\r\n",
            "hello list\r\n\r\n-- \r\nCarol Example\r\nhttps://carol.remote.test/\r\n",
        ]
        fine = [
            "first line\r\nsecond line\r\n",
            "Thanks for the help.\r\n",      # '.' is not in fml's one-line alphabet
        ]
        refused_markers = []
        for body in one_liners:
            data, marker = post_message("one line", sender=CAROL, body=body, marker_line=False)
            self.refused(self.post(data, sender=CAROL), ONE_LINE, CAROL)
            refused_markers.append((marker, body))
        for n, body in enumerate(fine, start=1):
            data, marker = post_message("not one line", sender=CAROL, body=body, marker_line=False)
            self.assertTrue(self.detail(self.post(data, sender=CAROL)).startswith(f"distributed as ml@example.org #{n}: "))
        self.wait_until(lambda: len(self.error_mails(CAROL)) >= 3 and len(self.posts_to(DAVE)) >= 2, 20,
                        "3 error mails and 2 posts")
        self.settle()
        errors = self.error_mails(CAROL)
        self.assertEqual(len(errors), 3, errors)
        for marker, body in refused_markers:
            [t] = [t for t in errors if f"<{marker}@remote.test>".encode() in t["data"]]
            self.assertErrorMail(t["data"], CAROL, ONE_LINE, marker)
            self.assertNotIn(body.strip().splitlines()[0].encode(), t["data"], "the post's body was returned")
        self.assertEqual(len(self.posts_to(DAVE)), 2)
        self.assertEqual(len(self.posts_to(CAROL)), 2)
        self.assertEqual(self.seq(), 2)

    def test_larger_than_max_size(self):
        self.make_list(members=[CAROL, DAVE], max_size="2K")
        self.start()
        big, marker = post_message("big post", sender=CAROL, body="x" * 70 + "\r\n" + ("y" * 70 + "\r\n") * 60)
        self.assertGreater(len(big), 4000)
        self.refused(self.post(big, sender=CAROL), TOO_LARGE, CAROL)
        small, marker2 = post_message("small post", sender=CAROL)
        self.assertLess(len(small), 1024)
        self.assertTrue(self.detail(self.post(small, sender=CAROL)).startswith("distributed as ml@example.org #1: "))
        self.wait_until(lambda: self.error_mails(CAROL) and self.posts_to(DAVE), 20, "the error mail and the post")
        self.settle()
        [e] = self.error_mails(CAROL)
        self.assertErrorMail(e["data"], CAROL, TOO_LARGE, marker, extra_texts=[TOO_LARGE_JA])
        [d] = self.posts_to(DAVE)
        self.assertDistributed(d["data"], 1, "[ml:00001] small post", marker2)
        # The error mail, the post to carol and to dave: nothing else.
        self.assertEqual(sorted((t["from"], r) for t in self.peer.transactions for r in t["to"]),
                         [("", CAROL), (BOUNCES, CAROL), (BOUNCES, DAVE)])
        self.assertEqual(self.seq(), 1)

    def test_system_posters_are_dropped_without_a_reply(self):
        # ml@: anyone may post (so they would be distributed); ml2@: members only (so a
        # non-member would get an error mail): neither distributes nor answers them.
        self.make_list(members=[ALICE, DAVE], policy="anyone")
        self.make_list("ml2@example.org", members=[ALICE, DAVE])
        self.start()
        locals_ = ["root", "postmaster", "MAILER-DAEMON", "Mailer-Daemon", "msgs", "nobody", "news", "majordomo",
                   "listserv", "listproc", "ROOT", "ml-help", "foo-subscribe", "foo-unsubscribe", "Foo-Help",
                   "bar-UNSUBSCRIBE"]
        for lp in locals_:
            for lst in (LIST, "ml2@example.org"):
                poster = f"{lp}@remote.test"
                data, _ = post_message(f"from {lp}", sender=poster, to=lst)
                qid = self.post(data, sender=poster, rcpts=[lst])
                with self.subTest(poster=poster, list=lst):
                    self.assertTrue(self.detail(qid, rcpt=lst).startswith("dropped: "), self.detail(qid, rcpt=lst))
        self.settle()
        self.assertEqual(self.peer.transactions, [])
        self.assertEqual(self.maildir_all(ALICE), [])
        self.assertEqual((self.archived(), self.seq()), ([], 0))
        self.assertEqual((self.archived("ml2@example.org"), self.seq("ml2@example.org")), ([], 0))

    def test_null_sender_post_is_dropped_without_a_reply(self):
        self.make_list(members=[ALICE, CAROL, DAVE])
        self.start()
        for sender_from in (CAROL, OUTSIDER):  # a member's From:, a non-member's From:
            data, _ = post_message("bounce-like", sender=sender_from)
            qid = self.post(data, sender="")
            self.assertTrue(self.detail(qid).startswith("dropped: "), self.detail(qid))
        self.settle()
        self.assertEqual(self.peer.transactions, [])
        self.assertEqual(self.maildir_all(ALICE), [])
        self.assertEqual((self.archived(), self.seq()), ([], 0))

    def test_mail_bomb_default_rule(self):
        self.make_list(members=[CAROL, DAVE])  # default: the 3rd post within 5 minutes
        self.start()
        markers = []
        for n in range(1, 5):
            data, marker = post_message(f"post {n}", sender=CAROL)
            qid = self.post(data, sender=CAROL)
            markers.append(marker)
            if n <= 2:
                self.assertTrue(self.detail(qid).startswith(f"distributed as ml@example.org #{n}: "), self.detail(qid))
            else:
                self.refused(qid, MAIL_BOMB, CAROL)
        # Per poster: dave still may post.
        data, dmarker = post_message("dave's post", sender=DAVE)
        self.assertTrue(self.detail(self.post(data, sender=DAVE)).startswith("distributed as ml@example.org #3: "))
        self.wait_until(lambda: len(self.error_mails(CAROL)) >= 2 and len(self.posts_to(DAVE)) >= 3, 20,
                        "2 error mails and 3 posts")
        self.settle()
        errors = self.error_mails(CAROL)
        self.assertEqual(len(errors), 2)
        for marker in markers[2:]:
            [t] = [t for t in errors if f"<{marker}@remote.test>".encode() in t["data"]]
            self.assertErrorMail(t["data"], CAROL, MAIL_BOMB, marker)
        got = sorted(header(t["data"], "Subject") for t in self.posts_to(DAVE))
        self.assertEqual(got, ["[ml:00001] post 1", "[ml:00002] post 2", "[ml:00003] dave's post"])
        self.assertEqual(self.seq(), 3)

    def test_mail_bomb_block_outlasts_the_window_and_a_restart(self):
        # A short window, the default block (3600 s): after the window has passed the
        # poster is still refused — because of the block, which survives a restart.
        self.make_list(members=[CAROL, DAVE], bomb="3/4s")
        self.start()
        for n in (1, 2):
            data, _ = post_message(f"post {n}", sender=CAROL)
            self.assertTrue(self.detail(self.post(data, sender=CAROL)).startswith(f"distributed as ml@example.org #{n}: "))
        data, m3 = post_message("post 3", sender=CAROL)
        self.refused(self.post(data, sender=CAROL), MAIL_BOMB, CAROL)
        time.sleep(5)  # the 4-second window is over: only the block can refuse now
        data, m4 = post_message("post 4", sender=CAROL)
        self.refused(self.post(data, sender=CAROL), MAIL_BOMB, CAROL)
        self.wait_queue_empty()
        self.restart_server()
        data, m5 = post_message("post 5", sender=CAROL)
        self.refused(self.post(data, sender=CAROL), MAIL_BOMB, CAROL)
        self.wait_until(lambda: len(self.error_mails(CAROL)) >= 3, 20, "3 error mails")
        self.settle()
        self.assertEqual(len(self.error_mails(CAROL)), 3)
        for marker in (m3, m4, m5):
            [t] = [t for t in self.error_mails(CAROL) if f"<{marker}@remote.test>".encode() in t["data"]]
            self.assertErrorMail(t["data"], CAROL, MAIL_BOMB, marker)
        self.assertEqual(len(self.posts_to(DAVE)), 2)
        self.assertEqual(self.seq(), 2)
        with open(self.list_dir("posters")) as f:
            self.assertIn(CAROL, f.read())


# --- bounces ---------------------------------------------------------------------------

class Bounces(ListCase):
    def test_three_dsns_disable_a_member_and_members_add_enables_it(self):
        self.make_list(members=[ALICE, CAROL, DAVE])
        self.start()
        for n in range(1, 4):
            qid = self.post(make_dsn(DAVE), sender="", rcpts=[BOUNCES])
            detail = self.detail(qid, rcpt=BOUNCES)
            self.assertTrue(detail.startswith(f"bounce counted for {DAVE}"), detail)
            if n < 3:
                self.assertNotIn("disabled", detail)
                m = self.members()[DAVE]
                self.assertEqual((m["disabled"], m["bounces"]), (False, n))
            else:
                self.assertRegex(detail, rf"; disabled: .*{re.escape(DAVE)}")
        members = self.members()
        self.assertEqual((members[DAVE]["disabled"], members[DAVE]["bounces"]), (True, 3))
        self.assertIsNotNone(members[DAVE]["disabled_since"])
        for who in (ALICE, CAROL):
            self.assertEqual((members[who]["disabled"], members[who]["bounces"]), (False, 0))
        self.assertIn(f"{DAVE} (disabled", self.mhlist("members", "list", LIST).out)

        # The next post reaches everyone but dave.
        data, marker = post_message("after the bounces", sender=CAROL)
        self.assertTrue(self.detail(self.post(data, sender=CAROL)).startswith("distributed as ml@example.org #1: "))
        self.wait_peer(CAROL)
        self.settle()
        self.assertEqual(self.at_peer(DAVE), [])
        self.assertEqual(len(self.with_marker(ALICE, marker)), 1)

        # mh-list members add enables dave again; the next post reaches him.
        r = self.mhlist("members", "add", LIST, DAVE, "--json")
        self.assertEqual(r.json()["enabled"], 1)
        self.assertEqual(self.members()[DAVE]["disabled"], False)
        data, marker2 = post_message("welcome back", sender=CAROL)
        self.assertTrue(self.detail(self.post(data, sender=CAROL)).startswith("distributed as ml@example.org #2: "))
        [t] = self.wait_peer(DAVE)
        self.settle()
        self.assertDistributed(t["data"], 2, "[ml:00002] welcome back", marker2)
        self.assertEqual(len(self.at_peer(CAROL)), 2)

    def test_relay_550_for_a_member_is_counted_as_a_bounce(self):
        bad = "bad@remote.test"  # the peer answers 550 5.1.1 for this one
        self.make_list(members=[CAROL, bad])
        self.start()
        data, marker = post_message("to a bad member", sender=CAROL)
        qid = self.post(data, sender=CAROL)
        self.assertTrue(self.detail(qid).startswith("distributed as ml@example.org #1: "))
        # The runner's DSN for bad@ goes to ml+bounces@, which counts it.
        line = self.wait_until(lambda: [d for d in self.dsn_lines() if d["to"] == BOUNCES], 20,
                               "the runner's DSN to ml+bounces@")[0]
        detail = self.detail(line["dsn"], rcpt=BOUNCES)
        self.assertTrue(detail.startswith(f"bounce counted for {bad}"), detail)
        self.settle()
        m = self.members()
        self.assertEqual((m[bad]["bounces"], m[bad]["disabled"]), (1, False))
        self.assertEqual(m[CAROL]["bounces"], 0)
        # carol got the post once; no DSN went to her (the poster) or anywhere else.
        [t] = self.at_peer(CAROL)
        self.assertEqual(t["from"], BOUNCES)
        self.assertEqual(len(self.peer.transactions), 1, self.peer.transactions)
        self.assertEqual([o["status"] for o in self.outcomes() if o["rcpt"] == bad], ["bounced"])


# --- unsubscribe -----------------------------------------------------------------------

class Unsubscribe(ListCase):
    def test_unsubscribe_round_trip(self):
        self.make_list(members=[CAROL, DAVE])
        self.start()
        # A non-member asking is ignored: nothing is sent.
        qid0 = self.post(plain_reply(OUTSIDER, UNSUBSCRIBE, "unsubscribe"), sender=OUTSIDER, rcpts=[UNSUBSCRIBE])
        self.assertIn("ignored", self.detail(qid0, rcpt=UNSUBSCRIBE))

        qid = self.post(plain_reply(CAROL, UNSUBSCRIBE, "unsubscribe"), sender=CAROL, rcpts=[UNSUBSCRIBE])
        detail = self.detail(qid, rcpt=UNSUBSCRIBE)
        m = re.search(r"awaits confirmation ([0-9a-f]{20})", detail)
        self.assertIsNotNone(m, detail)
        [req] = self.wait_peer(CAROL)
        self.assertEqual((req["from"], req["to"]), ("", [CAROL]))
        msg = parse(req["data"])
        address, token = confirm_address(msg)
        self.assertEqual(token, m.group(1))
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertIn(CAROL, msg.get_content())
        self.assertIn(LIST, msg.get_content())
        [item] = self.pending()
        self.assertEqual((item["id"], item["kind"], item["poster"]), (token, "unsubscribe", CAROL))
        self.assertIn(CAROL, self.members())  # not yet

        cqid = self.post(html_reply(CAROL, address), sender=CAROL, rcpts=[address])
        self.assertEqual(self.detail(cqid, rcpt=address), f"removed <{CAROL}> from {LIST}")
        [_, notice] = self.wait_peer(CAROL, 2)
        self.assertEqual((notice["from"], notice["to"]), ("", [CAROL]))
        note = parse(notice["data"])
        self.assertIn(LIST, "\n".join(text_parts(note)) + str(note["Subject"]))
        self.assertRegex("\n".join(text_parts(note)), r"(?i)unsubscribed|removed")
        self.assertEqual(sorted(self.members()), [DAVE])
        self.assertEqual(self.pending(), [])

        # A second reply does nothing; the next post reaches dave only.
        cqid2 = self.post(plain_reply(CAROL, address), sender=CAROL, rcpts=[address])
        self.assertTrue(self.detail(cqid2, rcpt=address).startswith("confirmation ignored: "))
        data, marker = post_message("after carol left", sender=DAVE)
        self.assertTrue(self.detail(self.post(data, sender=DAVE)).startswith("distributed as ml@example.org #1: "))
        self.wait_peer(DAVE)
        self.settle()
        self.assertEqual(len(self.at_peer(CAROL)), 2)  # the request and the notice
        self.assertEqual(len(self.at_peer(DAVE)), 1)
        self.assertEqual(len(self.peer.transactions), 3)


# --- the domain quota --------------------------------------------------------------------

class Quota(ListCase):
    def test_archive_counts_and_a_full_domain_refuses_posts_at_rcpt(self):
        self.add_domain("small.example", "--quota", "1M")
        address = "ml@small.example"
        self.make_list(address, members=["far@remote.test"], policy="anyone")
        self.start()
        data, marker = post_message("fills the domain", sender=CAROL, to=address,
                                    body="".join(f"line {i:04d} of the post\r\n" for i in range(100)))
        qid = self.post(data, sender=CAROL, rcpts=[address])
        self.assertTrue(self.detail(qid, rcpt=address).startswith("distributed as ml@small.example #1: "))
        self.wait_peer("far@remote.test")
        self.settle()
        archived = self.archive_file(1, address=address)
        size = os.stat(archived).st_size
        usage = self.quota("small.example")
        # The archive is the domain's only mail, and it is counted.
        self.assertEqual((usage["usage_bytes"], usage["usage_messages"]), (size, 1), usage)
        [entry] = usage["lists"]
        self.assertEqual((entry["address"], entry["usage_bytes"]), (address, size), usage)
        # Exactly full: the next post is refused at RCPT, nothing is queued.
        self.assertExit(self.run_tool("mh-quota", "set", "small.example", str(size)), 0)
        s = self.smtplib_client("smtp", starttls=False)
        self.assertEqual(s.mail(CAROL)[0], 250)
        code, text = s.rcpt(address)
        self.assertEqual((code, text.decode()), (552, f"5.2.2 <{address}>: Disk quota exceeded"))
        s.quit()
        self.assertEqual(self.queue_ids(), [])
        self.assertEqual(self.seq(address), 1)


if __name__ == "__main__":
    ml.main()
