"""Outbound delivery by MX (SPEC §8 "Outbound"), end to end with real peers: dnsmasq
serving MX / A / null-MX records on loopback, Postfix's smtp-sink and aiosmtpd as the
MX hosts on 127.0.0.2, .3 … at `outbound.port`. Mail gets into the queue the way a user
sends it (AUTH PLAIN from 127.0.0.1, remote recipients → "250 … queued as ID"); what the
peers received, the runner's log lines and the DSNs in the local sender's Maildir are
what is checked:
  * RFC 5321 §5.1: the lowest preference first, whatever the answer order; a host that
    refuses the connection → the next one in the same attempt; implicit MX (A only);
  * RFC 7505 null MX → bounced at once (a DSN, no connection anywhere); NXDOMAIN → DSN;
    a silent DNS server → deferred (no DSN), retried;
  * one message to two domains reaches each MX once, with only its own recipients;
  * 5xx from the MX → bounced with a DSN, 4xx → deferred;
  * outbound.per_destination: a stuck destination (an MX that holds its reply to the
    end of the data) gets at most that many transfers and does not hold up mail to other
    destinations;
  * SIGTERM stops promptly (exit 0, the entry kept for the next start) while an MX holds
    a transfer, and when a cached connection's MX never answers QUIT."""

import signal
import subprocess
import threading
import time

import mhtest
from mhtest_outbound import SENDER, OutboundCase, make_message, wait_for

ZONE = """
local=/out.test/
# two MX: pref 10 -> 127.0.0.2 (nothing listens), pref 20 -> 127.0.0.3 (smtp-sink)
mx-host=twomx.out.test,mx1.twomx.out.test,10
mx-host=twomx.out.test,mx2.twomx.out.test,20
host-record=mx1.twomx.out.test,127.0.0.2
host-record=mx2.twomx.out.test,127.0.0.3
# preference order whatever the order of the answer: the pref 20 record comes first
mx-host=ordered.out.test,mxb.ordered.out.test,20
mx-host=ordered.out.test,mxa.ordered.out.test,10
host-record=mxa.ordered.out.test,127.0.0.4
host-record=mxb.ordered.out.test,127.0.0.5
# implicit MX: an A record and no MX
host-record=implicit.out.test,127.0.0.6
# RFC 7505 null MX, beside an A record that must not be used as an implicit MX
mx-host=nullmx.out.test,.,0
host-record=nullmx.out.test,127.0.0.7
# two domains, two MX hosts
mx-host=first.out.test,mx.first.out.test,10
host-record=mx.first.out.test,127.0.0.8
mx-host=second.out.test,mx.second.out.test,10
host-record=mx.second.out.test,127.0.0.9
# per-destination cap: a stuck MX and a fast one
mx-host=slow.out.test,mx.slow.out.test,10
host-record=mx.slow.out.test,127.0.0.10
mx-host=fast.out.test,mx.fast.out.test,10
host-record=mx.fast.out.test,127.0.0.11
# an MX that refuses every recipient for good (5xx), one that says "later" (4xx)
mx-host=reject5.out.test,mx.reject5.out.test,10
host-record=mx.reject5.out.test,127.0.0.12
mx-host=reject4.out.test,mx.reject4.out.test,10
host-record=mx.reject4.out.test,127.0.0.13
# nosuch.out.test: no record at all (NXDOMAIN)
"""
IPS = [f"127.0.0.{n}" for n in range(2, 14)]


class OutboundMx(OutboundCase):
    ZONE = ZONE
    IPS = IPS

    def assertDeliveredOnce(self, sink, message_id, rcpts):
        got = [m for m in sink.messages() if m.message_id == message_id]
        self.assertEqual(len(got), 1, f"{message_id} at {sink.ip}: {sink.messages()}")
        self.assertEqual(got[0].mail_from, SENDER)
        self.assertEqual(sorted(got[0].rcpts), sorted(rcpts))
        return got[0]

    def wait_dsns(self, n, timeout=15):
        return wait_for(lambda: len(self.maildir_new(SENDER)) >= n and self.dsn_messages(), timeout,
                        what=f"{n} DSN(s) in {SENDER}'s Maildir/new")

    # --- RFC 5321 §5.1 ------------------------------------------------------------------

    def test_refused_first_mx_falls_back_to_the_next_in_the_same_attempt(self):
        sink = self.sink("127.0.0.3", self.mx_port)
        self.start()
        qid = self.submit(["user@twomx.out.test"], make_message("two mx", "<twomx-1@test>"))
        self.wait_log_re(rf"queue {qid}: to=<user@twomx\.out\.test> relay=mx2\.twomx\.out\.test"
                         rf"\[127\.0\.0\.3\]:{self.mx_port} status=sent \(250 ")
        self.wait_queue_empty()
        msg = self.assertDeliveredOnce(sink, "<twomx-1@test>", ["user@twomx.out.test"])
        self.assertEqual(msg.subject, "two mx")
        # One attempt: one status line, sent; never deferred first.
        self.assertEqual([s[2] for s in self.status_lines(qid)], ["sent"], self.log_lines(qid))

    def test_lowest_preference_first_whatever_the_answer_order(self):
        low = self.sink("127.0.0.4", self.mx_port)
        high = self.sink("127.0.0.5", self.mx_port)
        self.start()
        s = self.submitter()
        ids = [self.submit_on(s, [f"u{i}@ordered.out.test"], make_message(f"ordered {i}", f"<ordered-{i}@test>"))
               for i in range(3)]
        s.quit()
        self.wait_queue_empty()
        for i, qid in enumerate(ids):
            self.assertEqual([s[1:3] for s in self.status_lines(qid)],
                             [(f"mxa.ordered.out.test[127.0.0.4]:{self.mx_port}", "sent")], self.log_lines(qid))
            self.assertDeliveredOnce(low, f"<ordered-{i}@test>", [f"u{i}@ordered.out.test"])
        self.assertEqual(high.messages(), [])

    def test_implicit_mx_is_the_domains_a_record(self):
        sink = self.sink("127.0.0.6", self.mx_port)
        self.start()
        qid = self.submit(["someone@implicit.out.test"], make_message("implicit", "<implicit-1@test>"))
        self.wait_log_re(rf"queue {qid}: to=<someone@implicit\.out\.test> relay=\S*\[127\.0\.0\.6\]:{self.mx_port} "
                         r"status=sent \(250 ")
        self.wait_queue_empty()
        self.assertDeliveredOnce(sink, "<implicit-1@test>", ["someone@implicit.out.test"])

    # --- permanent DNS answers: a DSN at once ---------------------------------------------

    def test_null_mx_bounces_at_once_with_one_dsn_and_no_connection(self):
        trap = self.hostile("127.0.0.7", self.mx_port, "silent")  # the domain's A record: must stay unused
        self.start()
        started = time.monotonic()
        qid = self.submit(["nobody@nullmx.out.test"], make_message("to a null MX", "<nullmx-1@test>"))
        m = self.wait_log_re(rf"queue {qid}: to=<nobody@nullmx\.out\.test> relay=\S+ status=bounced \((5\d\d [^)]*)\)")
        self.assertRegex(m.group(1), r"^5\d\d 5\.\d+\.\d+ ")
        self.wait_log_re(rf"queue {qid}: DSN [0-9A-Za-z]+ queued to <{SENDER}>")
        [dsn] = self.wait_dsns(1)
        self.wait_queue_empty()  # the original and the DSN (delivered locally)
        self.assertLess(time.monotonic() - started, 10, "a null MX is final: no retry before the bounce")
        fields = self.assertDsn(dsn, ["nobody@nullmx.out.test"])
        status = fields["nobody@nullmx.out.test"]["Status"].strip()
        # RFC 7505 §4.2: 5.1.10 is the code for a null MX; any 5.x.x is a correct bounce.
        if status != "5.1.10":
            print(f"note: null MX DSN Status is {status} (RFC 7505 suggests 5.1.10)")
        self.assertIn("<nullmx-1@test>", dsn.as_string(), "the DSN returns the original's headers")
        # Nothing more: exactly one DSN, one status line, and no connection to the A record.
        time.sleep(1.5)
        self.assertEqual(len(self.maildir_new(SENDER)), 1)
        self.assertEqual(len(self.status_lines(qid)), 1, self.log_lines(qid))
        self.assertEqual(trap.connections, 0, "the null MX domain's A record was contacted")

    def test_nxdomain_bounces_with_a_dsn(self):
        self.start()
        qid = self.submit(["ghost@nosuch.out.test", "other@nosuch.out.test"], make_message("to nowhere", "<nx-1@test>"))
        self.wait_log_re(rf"queue {qid}: to=<ghost@nosuch\.out\.test> relay=\S+ status=bounced \(5\d\d ")
        self.wait_log_re(rf"queue {qid}: DSN [0-9A-Za-z]+ queued to <{SENDER}> for 2 recipient")
        [dsn] = self.wait_dsns(1)
        self.wait_queue_empty()
        self.assertDsn(dsn, ["ghost@nosuch.out.test", "other@nosuch.out.test"])
        time.sleep(1)
        self.assertEqual(len(self.maildir_new(SENDER)), 1, "one DSN for both recipients of one message")

    def test_silent_dns_defers_and_retries_without_a_dsn(self):
        self.start_outbound(self.dns.blackhole, self.mx_port)
        qid = self.submit(["user@implicit.out.test"], make_message("dns down", "<dnsdown-1@test>"))
        self.wait_log_re(rf"queue {qid}: to=<user@implicit\.out\.test> relay=\S+ status=deferred \(4\d\d ", timeout=20)
        # retry: [1s, 2s] → a second attempt within a few seconds, still deferred.
        wait_for(lambda: len(self.status_lines(qid, "deferred")) >= 2, 20, what="a second deferred attempt")
        self.assertEqual(self.status_lines(qid, "sent") + self.status_lines(qid, "bounced"), [])
        env = self.read_env(qid)
        self.assertGreaterEqual(int(env["attempts"]), 1)
        self.assertEqual(env["recipient"], ["user@implicit.out.test"])
        self.assertNotIn(" DSN ", self.log())
        self.assertEqual(self.maildir_new(SENDER), [])

    # --- several destinations -----------------------------------------------------------

    def test_one_message_to_two_domains_reaches_each_mx_once(self):
        first = self.sink("127.0.0.8", self.mx_port)
        second = self.sink("127.0.0.9", self.mx_port)
        self.start()
        rcpts = ["a@first.out.test", "b@first.out.test", "c@second.out.test"]
        qid = self.submit(rcpts, make_message("two domains", "<twodomains-1@test>"))
        self.wait_queue_empty()
        self.assertEqual(sorted((s[0], s[2]) for s in self.status_lines(qid)),
                         [(r, "sent") for r in rcpts], self.log_lines(qid))
        self.assertDeliveredOnce(first, "<twodomains-1@test>", ["a@first.out.test", "b@first.out.test"])
        self.assertDeliveredOnce(second, "<twodomains-1@test>", ["c@second.out.test"])
        time.sleep(1)  # nothing goes out again
        self.assertEqual(len(first.messages()), 1)
        self.assertEqual(len(second.messages()), 1)

    def test_remote_5xx_bounces_and_4xx_defers(self):
        hard = self.sink("127.0.0.12", self.mx_port, "-f", "RCPT")
        soft = self.sink("127.0.0.13", self.mx_port, "-r", "RCPT")
        self.start()
        q5 = self.submit(["x@reject5.out.test"], make_message("to 5xx", "<r5-1@test>"))
        q4 = self.submit(["y@reject4.out.test"], make_message("to 4xx", "<r4-1@test>"))
        self.wait_log_re(rf"queue {q5}: to=<x@reject5\.out\.test> relay=mx\.reject5\.out\.test\[127\.0\.0\.12\]:"
                         rf"{self.mx_port} status=bounced \(5\d\d ")
        [dsn] = self.wait_dsns(1)
        self.assertDsn(dsn, ["x@reject5.out.test"])
        wait_for(lambda: len(self.status_lines(q4, "deferred")) >= 2, 20, what="two deferred attempts of the 4xx entry")
        self.assertEqual(self.status_lines(q4, "bounced") + self.status_lines(q4, "sent"), [])
        self.assertEqual(self.queue_ids(), [q4])
        self.assertEqual(hard.messages() + soft.messages(), [])
        self.assertEqual(len(self.maildir_new(SENDER)), 1)

    def test_per_destination_cap_does_not_hold_up_other_destinations(self):
        gate = threading.Event()
        slow = self.peer("127.0.0.10", self.mx_port, gate=gate, hold_limit=90)
        fast = self.sink("127.0.0.11", self.mx_port)
        self.start(per_destination=2)
        s = self.submitter()
        slow_ids = [self.submit_on(s, [f"s{i}@slow.out.test"], make_message(f"slow {i}", f"<slow-{i}@test>"))
                    for i in range(5)]
        # The slow MX holds every DATA (the message is in, the 250 does not come).
        wait_for(lambda: slow.in_data >= 1, 15, what="a transfer held in DATA at the slow MX")
        t0 = time.monotonic()
        fast_ids = [self.submit_on(s, [f"f{i}@fast.out.test"], make_message(f"fast {i}", f"<fast-{i}@test>"))
                    for i in range(5)]
        s.quit()
        try:
            wait_for(lambda: len(fast.messages()) >= 5, 20, what="the fast destination's 5 messages")
        except AssertionError as e:
            gate.set()  # let the server stop at tearDown (SIGTERM has its own test below)
            raise AssertionError(
                f"{e}: while the slow MX holds {slow.in_data} transfer(s) in DATA, mail to another destination "
                f"does not go out ({len(fast.messages())} of 5 arrived; status lines so far: "
                f"{[l for l in self.log().splitlines() if ' status=' in l]})") from None
        flowed = time.monotonic() - t0
        for i in range(5):
            self.assertDeliveredOnce(fast, f"<fast-{i}@test>", [f"f{i}@fast.out.test"])
        # Meanwhile the slow destination used its 2 slots (and no more) and got nothing through.
        self.assertEqual(slow.messages(), [])
        wait_for(lambda: slow.in_data == 2, 5, what="both of the slow destination's slots in use")
        self.assertLessEqual(slow.max_in_data, 2)
        self.assertEqual(sorted(set(self.queue_ids()) & set(slow_ids)), sorted(slow_ids))
        wait_for(lambda: not set(fast_ids) & set(self.queue_ids()), 10, what="the fast entries removed")
        gate.set()
        self.wait_queue_empty(timeout=30)
        got = sorted(m.message_id for m in slow.messages())
        self.assertEqual(got, sorted(f"<slow-{i}@test>" for i in range(5)))
        self.assertLessEqual(slow.max_in_data, 2, "per_destination: 2 was exceeded at the slow MX")
        print(f"\nper_destination: the fast destination's 5 messages went out in {flowed:.1f}s "
              f"while the slow MX held 2 transfers")

    def test_sigterm_while_an_mx_holds_the_data_stops_promptly_and_keeps_the_entry(self):
        gate = threading.Event()
        slow = self.peer("127.0.0.10", self.mx_port, gate=gate, hold_limit=120)
        self.start()
        qid = self.submit(["held@slow.out.test"], make_message("held", "<held-1@test>"))
        wait_for(lambda: slow.in_data >= 1, 15, what="the transfer held in DATA at the MX")
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)  # --shutdown-grace is 10s
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.fail("mh-serve did not stop within 15 s of SIGTERM while an MX held a transfer in DATA "
                      "(killed; the log ends:\n" + "\n".join(self.log().splitlines()[-5:]) + ")")
        stopped = time.monotonic() - t0
        self.assertEqual(self.proc.returncode, 0, self.log())
        self.assertIn("queue runner: stopped", self.log())
        # The transfer was cut: the entry stays, and the next start delivers it (again).
        self.assertEqual(self.queue_ids(), [qid])
        gate.set()
        self.start()
        self.wait_queue_empty(timeout=20)
        self.assertIn("<held-1@test>", [m.message_id for m in slow.messages()])
        print(f"\nSIGTERM with a transfer held in DATA: stopped in {stopped:.1f}s")

    def test_sigterm_with_a_cached_connection_to_an_mx_that_never_answers_quit(self):
        # libcurl keeps connections to MX hosts open for reuse and says QUIT when it
        # closes them; a peer that never answers must not hold up the stop.
        mute = self.peer("127.0.0.10", self.mx_port, answer_quit=False, hold_limit=120)
        self.start()
        qid = self.submit(["quiet@slow.out.test"], make_message("quit", "<quit-1@test>"))
        self.wait_log_re(rf"queue {qid}: to=<quiet@slow\.out\.test> relay=\S+ status=sent")
        self.wait_queue_empty()
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.fail(f"mh-serve did not stop within 15 s of SIGTERM: it waits for the reply to QUIT from an MX "
                      f"that never answers ({mute.quits_ignored} QUIT(s) unanswered; killed)")
        self.assertEqual(self.proc.returncode, 0, self.log())
        print(f"\nSIGTERM with an MX that never answers QUIT: stopped in {time.monotonic() - t0:.1f}s")


if __name__ == "__main__":
    mhtest.main()
