"""Runs Synapse in this process and exits when stdin closes.

The test harness keeps our stdin open; if the harness dies in any way (even
SIGKILL) the pipe closes and this Synapse goes with it, so no server is left
behind.
"""
import os
import signal
import sys
import threading


def _watch_stdin() -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Timer(5.0, lambda: os._exit(0)).start()


threading.Thread(target=_watch_stdin, daemon=True).start()

from synapse.app.homeserver import main  # noqa: E402

sys.argv = ["synapse"] + sys.argv[1:]
main()
