"""mh-user under contention and under SIGKILL: eight processes provisioning one domain at
once lose nothing, and a tool killed at any moment of a write never leaves a truncated,
empty or half-written spool file behind (SPEC §2: temp + fsync + rename under a lock)."""

import json
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mhtest  # noqa: E402

ACCOUNT_KEYS = {"password", "display_name", "created", "state", "sending", "quota"}
DOMAIN_KEYS = {"created", "state", "quota"}
WORKERS = 8
ACCOUNTS_PER_WORKER = 50


class SpoolChecks(mhtest.SpoolTestCase):
    def spool_files(self):
        """(relative path, is hidden) of every file and directory under domains/; hidden =
        a temp file or anything inside a temp directory (a dot name somewhere in the path)."""
        for dirpath, dirnames, filenames in os.walk(self.path("domains")):
            for name in dirnames + filenames:
                rel = os.path.relpath(os.path.join(dirpath, name), self.spool)
                yield rel, any(part.startswith(".") for part in rel.split(os.sep))

    def assertConfigComplete(self, rel):
        """account.yaml / domain.yaml: non-empty, newline-terminated, every key present."""
        with open(self.path(rel), encoding="utf-8") as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"), f"{rel} is truncated: {text!r}")
        pairs = mhtest.parse_flat_yaml(text)
        want = ACCOUNT_KEYS if rel.endswith("account.yaml") else DOMAIN_KEYS
        self.assertTrue(want <= set(pairs), f"{rel} lacks keys: {text!r}")
        if "password" in pairs:
            self.assertRegex(pairs["password"], r"^\$y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{43}$", rel)

    def assertSpoolSound(self):
        """Every YAML file is complete and every account readable through the tool itself."""
        names = set()
        for rel, hidden in self.spool_files():
            if hidden:
                continue
            base = os.path.basename(rel)
            if os.path.isdir(self.path(rel)) and not os.path.islink(self.path(rel)):
                continue
            if base in ("account.yaml", "domain.yaml"):
                self.assertConfigComplete(rel)
            elif base == "domainsize":  # the domain's usage record, made when usage is read
                with open(self.path(rel)) as f:
                    self.assertRegex(f.read(), r"^(-?\d+ -?\d+\n)+$", f"{rel} is torn")
            else:
                self.assertEqual(base, "maildirsize", f"unexpected file {rel}")
                self.assertGreater(os.path.getsize(self.path(rel)), 0, f"{rel} is empty")
        r = self.user("list", "--json")
        self.assertExit(r, 0)
        for account in r.json()["accounts"]:
            names.add(account["address"])
            self.assertExit(self.user("show", account["address"], "--json"), 0)
        self.assertExit(self.user("domain", "list", "--json"), 0)
        return names


class ConcurrentAdds(SpoolChecks):
    def test_eight_processes_add_fifty_accounts_each(self):
        self.add_domain("race.jp")
        failures = []

        def worker(w):
            for i in range(ACCOUNTS_PER_WORKER):
                r = self.user("add", f"w{w}-n{i}@race.jp", "--password-stdin", stdin=f"pw-{w}-{i}\n",
                              env={"MH_LOCK_TIMEOUT": "60"})
                if r.code != 0:
                    failures.append(r)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])

        want = {f"w{w}-n{i}@race.jp" for w in range(WORKERS) for i in range(ACCOUNTS_PER_WORKER)}
        r = self.user("list", "race.jp", "--json")
        self.assertExit(r, 0)
        self.assertEqual({a["address"] for a in r.json()["accounts"]}, want)
        for rel, hidden in self.spool_files():
            self.assertFalse(hidden, f"leftover temp file or directory {rel}")
        self.assertEqual(self.assertSpoolSound(), want)
        # Each account got its own password, not a neighbour's.
        for w, i in ((0, 0), (7, 49), (3, 17)):
            self.assertExit(self.user("auth-test", f"w{w}-n{i}@race.jp", stdin=f"pw-{w}-{i}\n"), 0)
            self.assertExit(self.user("auth-test", f"w{w}-n{i}@race.jp", stdin=f"pw-{w}-{i + 1}\n"), 1)

    def test_racing_exist_ok_adds_of_one_account_all_succeed(self):
        self.add_domain("race.jp")
        procs = [subprocess.Popen([mhtest.tool_path("mh-user"), "--spool", self.spool, "add", "same@race.jp",
                                   "--exist-ok", "--password-stdin", "--json"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(WORKERS)]
        outcomes = [p.communicate(f"pw-{n}\n", timeout=60) for n, p in enumerate(procs)]
        self.assertEqual([p.returncode for p in procs], [0] * WORKERS, outcomes)
        created = [json.loads(out)["created"] for out, _ in outcomes]
        self.assertEqual(created.count(True), 1, outcomes)
        self.assertSpoolSound()


class KilledMidWrite(SpoolChecks):
    ITERATIONS = 100

    def start(self, args, password=None):
        p = subprocess.Popen([mhtest.tool_path("mh-user"), "--spool", self.spool, *args],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if password:
                p.stdin.write(password.encode() + b"\n")
            p.stdin.close()
        except BrokenPipeError:
            pass
        return p

    def full_run_seconds(self, args, password=None):
        start = time.monotonic()
        self.start(args, password).wait(timeout=60)
        return time.monotonic() - start

    def test_sigkill_at_random_moments_never_leaves_a_broken_file(self):
        seed = os.environ.get("MH_TEST_SEED", str(time.time_ns()))
        print(f"kill loop seed: MH_TEST_SEED={seed}", file=sys.stderr)
        rng = random.Random(seed)
        self.add_domain("kill.jp")
        accounts = [f"k{i}@kill.jp" for i in range(4)]
        for a in accounts:
            self.add_account(a)
        # Kills land at uniform 0-30 ms after start; hashing commands only write after
        # the hash (~50 ms), so half of their kills are shifted to end just past the
        # measured run time, where the temp file is written and renamed.
        write_at = {
            "passwd": self.full_run_seconds(["passwd", accounts[0], "--password-stdin"], "warm-up"),
            "add": self.full_run_seconds(["add", "warm@kill.jp", "--password-stdin"], "warm-up"),
            "suspend": self.full_run_seconds(["suspend", accounts[0]]),
        }
        for n in range(self.ITERATIONS):
            op = rng.choice(["passwd", "add", "suspend", "resume", "suspend-sending", "domain"])
            account = rng.choice(accounts)
            if op == "passwd":
                args, pw = ["passwd", account, "--password-stdin"], f"pw-{n}"
            elif op == "add":
                args, pw = ["add", f"new{n}@kill.jp", "--password-stdin"], f"pw-{n}"
            elif op == "domain":
                args, pw = ["domain", "add", f"d{n}.kill.jp"], None
            elif op == "suspend-sending":
                args, pw = ["suspend", "--sending", "--reason", f"iteration {n}", account], None
            else:
                args, pw = [op, account], None
            delay = rng.uniform(0, 0.030)
            if op in write_at and rng.random() < 0.5:
                delay = max(0.0, write_at[op] - 0.030 + delay)
            p = self.start(args, pw)
            time.sleep(delay)
            p.kill()
            p.wait(timeout=60)

        survivors = self.assertSpoolSound()
        self.assertTrue(set(accounts) <= survivors)
        # Nothing stays locked or half-created: every command still works afterwards.
        self.add_account("after@kill.jp")
        for a in accounts:
            self.assertExit(self.user("passwd", a, "--password-stdin", stdin="final-pw\n"), 0)
            self.assertExit(self.user("resume", a), 0)
            self.assertExit(self.user("auth-test", a, stdin="final-pw\n"), 0)
        self.assertSpoolSound()


if __name__ == "__main__":
    mhtest.main()
