"""Wrong API keys, counted per client address across every worker of a server.

The API (`/v1/*`) and the workspace's login form share one count: MAX_FAILURES wrong keys from
one address within WINDOW seconds block that address (HTTP 429, `Retry-After`) until the oldest
of them is WINDOW seconds old. While blocked, a request's key is not even compared, so guessing
during a block learns nothing, and every worker refuses it: the state is two small files per
address in a folder under the models folder, which all workers of `leadready serve --workers N`
share. A request with a valid key costs one `stat` (is this address blocked?); only wrong keys
write. A right key does not clear the count (clients behind one address would otherwise reset
a guesser's): wrong keys are forgotten as they leave the window.

The address is the connection's peer, or what `X-Forwarded-For` says only when the connection
comes from a proxy the operator listed (`leadready serve --forwarded-allow-ips`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from starlette.requests import Request

from leadready.features.files import replacing

MAX_FAILURES = 10
WINDOW = 300.0
FOLDER = "throttle"
"""Under the workspace folder (`models/workspace/throttle/`)."""
log = logging.getLogger(__name__)


def client_address(request: Request) -> str:
    """Whom the throttle counts: the peer (uvicorn has put the forwarded client there when the
    peer is a listed proxy)."""
    return request.client.host if request.client else "unknown"


class KeyThrottle:
    """Failed-key counts and blocks per address, as files in `folder`: `<hash>.failures` holds
    the times of recent wrong keys (one line each, appended), `<hash>.block` exists while the
    address is blocked, its modification time the moment the block ends."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _paths(self, address: str) -> tuple[Path, Path]:
        name = hashlib.sha256(address.encode("utf-8", "backslashreplace")).hexdigest()[:32]
        return self.folder / f"{name}.failures", self.folder / f"{name}.block"

    def wait(self, address: str, now: float | None = None) -> float:
        """Seconds this address must wait before its next attempt (0: it may try now)."""
        try:
            until = self._paths(address)[1].stat().st_mtime
        except FileNotFoundError:
            return 0.0
        except OSError as error:
            log.error("wrong-key throttle cannot read %s: %s", self.folder, error)
            return 0.0
        return max(0.0, until - (time.time() if now is None else now))

    def failed(self, address: str, now: float | None = None) -> float:
        """Count one wrong key; returns how long the address is now blocked (0: not blocked).
        A folder that cannot be written is logged and counts nothing: the wrong key still gets
        its 401, never a 500."""
        try:
            return self._count(address, time.time() if now is None else now)
        except OSError as error:
            log.error("wrong-key throttle cannot count in %s: %s", self.folder, error)
            return 0.0

    def _count(self, address: str, now: float) -> float:
        failures, block = self._paths(address)
        self.folder.mkdir(parents=True, exist_ok=True)
        # One write with O_APPEND: workers counting the same address at once lose no line.
        fd = os.open(failures, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{now:.3f}\n".encode())
        finally:
            os.close(fd)
        times = [float(t) for t in failures.read_text().split() if t.replace(".", "").isdigit()]
        recent = sorted(t for t in times if now - t < WINDOW)
        if len(recent) < MAX_FAILURES:
            if len(times) > 4 * MAX_FAILURES:  # forget what left the window
                self._rewrite(failures, recent)
            return 0.0
        until = recent[-MAX_FAILURES] + WINDOW
        with replacing(block) as partial:
            partial.touch()
            os.utime(partial, (until, until))
        self._rewrite(failures, recent[-MAX_FAILURES:])
        return until - now

    @staticmethod
    def _rewrite(failures: Path, kept: list[float]) -> None:
        with replacing(failures) as partial:
            partial.write_text("".join(f"{t:.3f}\n" for t in kept))
