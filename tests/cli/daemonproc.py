"""What the fixtures that run a real daemon per test class share (rspamdfixture, clamdfixture):
the daemon dies with the test process, and stopping it reaches every process it forked."""

import ctypes
import os
import shutil
import signal
import subprocess


def die_with_parent():
    """preexec_fn: SIGTERM the child when the test process goes away."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process_group(proc, timeout):
    """SIGTERM, then SIGKILL to the whole group of a daemon started with
    start_new_session=True (it leads its own process group), so workers that outlived
    the main process go too."""
    pgid = proc.pid
    try:
        proc.terminate()
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


class OwnedDaemon:
    """Base of a fixture that owns one daemon process (`proc`, started with
    start_new_session=True) and a temp dir (`tmp`): close() stops the one and removes
    the other, even when stopping fails."""

    STOP_TIMEOUT = 10.0
    proc = None
    tmp = None

    def _stop(self):
        if self.proc is None:
            return
        stop_process_group(self.proc, self.STOP_TIMEOUT)
        self.proc = None

    def close(self):
        try:
            self._stop()
        finally:
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None
