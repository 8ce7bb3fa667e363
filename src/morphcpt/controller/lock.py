"""One controller at a time per experiment: an exclusive `flock` on runs/<experiment>/controller.lock.

`submit`, `watch`, `retry` and `cancel` hold it for as long as they act; a second one refuses, naming the
holder. `status` never waits for it: when another controller holds it, status shows what that controller
last recorded and writes nothing. The lock is released by the kernel when its holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from morphcpt.errors import MorphcptError

LOCK_FILE = "controller.lock"


class ControllerBusy(MorphcptError):
    """Another controller holds the experiment's lock."""


class ControllerLock:
    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "argv": sys.argv[1:]}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        self._fd = fd
        return True

    def acquire(self, experiment: str) -> None:
        if not self.try_acquire():
            raise ControllerBusy(
                f"another morphcpt controller is acting on {experiment}: {self.holder()}; "
                "wait for it to finish, or stop it, then run this again"
            )

    def holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return f"holder of {self.path} unknown"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("since", 0)))
        command = " ".join(info.get("argv", []))
        return f"pid {info.get('pid')} on {info.get('host')} since {since} (morphcpt {command})"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
