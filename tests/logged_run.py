"""`crm-etl ARGS` as a process of its own whose log lines a test can wait for."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any


class Run:
    """`crm-etl ARGS` (with the sandbox `box`'s environment), its log lines collected as they come
    (a full load's extraction runs in a forked process: only the process's stderr sees its logs)."""

    def __init__(self, box: Any, args: list[str], env: dict[str, str] | None = None,
                 log_level: str = "WARNING") -> None:
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-m", "etl", *args, "--log-level", log_level],
                                     env={**os.environ, **box.env, **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def count(self, text: str) -> int:
        with self._seen:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float = 60, context: object = None, times: int = 1) -> None:
        """Until `times` log lines contain `text` (or the process ended first: fail)."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while sum(text in line for line in self.lines) < times:
                assert self._reader.is_alive() and time.monotonic() < deadline, \
                    f"no log line with {text!r} ({context}):\n{''.join(self.lines)[-3000:]}"
                self._seen.wait(0.2)

    def terminate(self) -> None:
        """SIGTERM, as supervisord stops a program."""
        self.proc.terminate()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out = self.proc.stdout.read()  # type: ignore[union-attr] - stderr is the reader thread's
        self.proc.wait(timeout)
        self._reader.join(timeout)
        return self.proc.returncode, out, "".join(self.lines)
