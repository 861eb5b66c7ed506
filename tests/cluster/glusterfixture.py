#!/usr/bin/python3
"""A single-node GlusterFS volume mounted twice over FUSE, which behaves like one spool
shared by two hosts (issue 14): used by tests/cluster/ and bench/cluster.sh. Needs root,
/dev/fuse and glusterfs-server; otherwise it says SKIPPED and exits SKIP_CODE.

As a command: `glusterfixture.py run -- CMD ARGS...` runs CMD with MNT1, MNT2 and
GLUSTER_VOLUME set and tears everything down afterwards; `glusterfixture.py sweep`
removes what a killed run (SIGKILL) left behind."""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP_CODE = 77  # tests/CMakeLists.txt: SKIP_RETURN_CODE of the cluster tests
# The mount options and volume setting with which a file made on one mount is seen at
# once on the other (measured for issue 14); without them lookups are cached for ~1 s.
MOUNT_OPTIONS = "attribute-timeout=0,entry-timeout=0,negative-timeout=0"
VOLUME_SETTINGS = [("performance.stat-prefetch", "off")]
# Our volumes are named mhc<pid>x<hex>: a sweep may remove those whose process is gone.
VOLUME_RE = re.compile(r"^mhc(\d+)x[0-9a-f]+$")
TMP_PREFIX = "mh-gluster-"


class Skip(Exception):
    """The machine cannot run a GlusterFS volume; the reason is the message."""


def skip(reason):
    """Says why loudly (a skipped cluster test must not look like a pass) and exits."""
    print(f"SKIPPED: {reason}", flush=True)
    print(f"SKIPPED: {reason}", file=sys.stderr, flush=True)
    sys.exit(SKIP_CODE)


def run(argv, timeout=120, check=True):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}: {(p.stdout + p.stderr).strip()}")
    return p


def gluster(*args, timeout=120, check=True):
    return run(["gluster", "--mode=script", *args], timeout=timeout, check=check)


def check_prerequisites():
    """Raises Skip naming what is missing."""
    if os.geteuid() != 0:
        raise Skip("the GlusterFS cluster test needs root (glusterd, mount)")
    missing = [t for t in ("glusterd", "gluster") if not shutil.which(t)]
    if missing or not os.path.exists("/sbin/mount.glusterfs"):
        raise Skip("glusterfs-server is not installed (apt-get install glusterfs-server)")
    if not os.path.exists("/dev/fuse"):
        p = subprocess.run(["modprobe", "fuse"], capture_output=True, text=True)
        if not os.path.exists("/dev/fuse"):
            raise Skip(f"no FUSE in this kernel: /dev/fuse is missing and modprobe fuse "
                       f"exited {p.returncode}: {p.stderr.strip()}")


def glusterd_answers():
    return gluster("volume", "list", timeout=20, check=False).returncode == 0


def glusterd_pids():
    p = run(["pgrep", "-x", "glusterd"], check=False)
    return [int(x) for x in p.stdout.split()]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def mounts_of(volume):
    """Mount points whose source is HOST:/volume (from /proc/mounts)."""
    points = []
    with open("/proc/mounts") as f:
        for line in f:
            source, point = line.split()[:2]
            if source.endswith(":/" + volume):
                points.append(point.replace("\\040", " "))
    return points


def unmount(point):
    """Unmounts; lazily when a process still holds a file there."""
    if run(["umount", point], check=False).returncode != 0:
        run(["umount", "-l", point], check=False)


def remove_volume(volume):
    for point in mounts_of(volume):
        unmount(point)
    gluster("volume", "stop", volume, "force", check=False)
    gluster("volume", "delete", volume, check=False)


def sweep():
    """Removes volumes (and their mounts and temp dirs) of runs whose process is gone:
    ctest kills a test that passed its TIMEOUT with SIGKILL, so no cleanup of its own ran."""
    removed = []
    for volume in gluster("volume", "list", check=False).stdout.split():
        m = VOLUME_RE.match(volume)
        if m and not pid_alive(int(m.group(1))):
            remove_volume(volume)
            removed.append(volume)
    tmp = tempfile.gettempdir()
    for name in os.listdir(tmp):
        m = re.match(re.escape(TMP_PREFIX) + r"(\d+)-", name)
        if m and not pid_alive(int(m.group(1))):
            path = os.path.join(tmp, name)
            for sub in ("mnt1", "mnt2"):
                if os.path.ismount(os.path.join(path, sub)):
                    unmount(os.path.join(path, sub))
            shutil.rmtree(path, ignore_errors=True)
    return removed


class GlusterVolume:
    """One volume VOL on a brick in a temp dir, mounted at mnt1 and mnt2. start() brings
    it up (starting glusterd -N unless one already answers); close() undoes whatever
    start() got to, and is safe to call twice."""

    def __init__(self):
        self.tmp = None
        self.volume = f"mhc{os.getpid()}x{secrets.token_hex(3)}"
        self.glusterd = None       # Popen when we started glusterd
        self.created = False
        self.mnt1 = self.mnt2 = None
        self.setup_secs = self.teardown_secs = None

    def start(self):
        started = time.monotonic()
        check_prerequisites()
        self.tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-")
        self.ensure_glusterd()
        sweep()
        brick = os.path.join(self.tmp, "brick")
        os.mkdir(brick)
        host = socket.gethostname()  # the volume refuses 127.0.0.1 and localhost
        gluster("volume", "create", self.volume, f"{host}:{brick}", "force")
        self.created = True
        for key, value in VOLUME_SETTINGS:
            gluster("volume", "set", self.volume, key, value)
        gluster("volume", "start", self.volume)
        self.mnt1 = self.mount(host, "mnt1")
        self.mnt2 = self.mount(host, "mnt2")
        self.setup_secs = time.monotonic() - started
        return self

    def ensure_glusterd(self):
        if glusterd_answers():
            return  # someone else's: used, never stopped
        if glusterd_pids():
            raise RuntimeError(f"a glusterd is running (pid {glusterd_pids()}) but does not answer "
                               "`gluster volume list`; not starting a second one")
        log = open(os.path.join(self.tmp, "glusterd.out"), "wb")
        # Its own process group, so stopping it reaches the brick processes it forks.
        self.glusterd = subprocess.Popen(["glusterd", "-N"], stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 90
        while not glusterd_answers():
            if self.glusterd.poll() is not None:
                raise RuntimeError(f"glusterd -N exited {self.glusterd.returncode}: {self.glusterd_log()}")
            if time.monotonic() > deadline:
                raise RuntimeError("glusterd -N did not answer within 90 s: " + self.glusterd_log())
            time.sleep(0.3)

    def glusterd_log(self):
        with open(os.path.join(self.tmp, "glusterd.out"), "rb") as f:
            return f.read().decode("utf-8", "replace")[-2000:]

    def mount(self, host, name):
        point = os.path.join(self.tmp, name)
        os.mkdir(point)
        run(["mount", "-t", "glusterfs", "-o", MOUNT_OPTIONS, f"{host}:/{self.volume}", point])
        return point

    def close(self):
        started = time.monotonic()
        try:
            for point in (self.mnt1, self.mnt2):
                if point and os.path.ismount(point):
                    unmount(point)
            self.mnt1 = self.mnt2 = None
            if self.created:
                self.created = False
                gluster("volume", "stop", self.volume, "force", check=False)
                gluster("volume", "delete", self.volume, check=False)
        finally:
            self.stop_glusterd()
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None
            self.teardown_secs = time.monotonic() - started

    def stop_glusterd(self):
        if self.glusterd is None:
            return
        proc, self.glusterd = self.glusterd, None
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=20)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def exit_on_signals():
    """SIGTERM/SIGINT/SIGHUP become SystemExit, so `finally` blocks unmount and delete
    the volume when ctest or a user stops the run."""
    def handler(signum, _frame):
        raise SystemExit(128 + signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


def open_volume():
    """A started GlusterVolume, or SKIPPED and exit SKIP_CODE when the machine has none.
    A half-made volume is removed before the error propagates."""
    vol = GlusterVolume()
    try:
        vol.start()
    except Skip as e:
        vol.close()
        skip(str(e))
    except BaseException:
        vol.close()
        raise
    return vol


def main(argv):
    if argv[:1] == ["sweep"]:
        check_prerequisites()
        print("removed:", " ".join(sweep()) or "nothing")
        return 0
    if argv[:2] != ["run", "--"] or len(argv) < 3:
        print(f"usage: {sys.argv[0]} run -- CMD [ARGS...] | sweep", file=sys.stderr)
        return 64
    exit_on_signals()
    vol = open_volume()
    try:
        print(f"glusterfixture: volume {vol.volume} up in {vol.setup_secs:.1f}s at {vol.mnt1} and {vol.mnt2}",
              file=sys.stderr, flush=True)
        env = dict(os.environ, MNT1=vol.mnt1, MNT2=vol.mnt2, GLUSTER_VOLUME=vol.volume)
        return subprocess.run(argv[2:], env=env).returncode
    finally:
        vol.close()
        print(f"glusterfixture: teardown {vol.teardown_secs:.1f}s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
