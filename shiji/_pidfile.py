"""
The PID file: written at start, removed at exit, never shared by two live
daemons.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from twisted.application import service

__all__ = ["PIDFile", "PIDFileError", "PIDFileService"]


class PIDFileError(Exception):
    """The PID file is held by a live daemon, or cannot be written."""


def _running_daemon(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        # The number may have been reused by an unrelated process.
        try:
            return b"shiji" in cmdline.read_bytes()
        except OSError:
            return True
    return True


class PIDFile:
    """
    :param path: where the process id is written.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> Optional[int]:
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise PIDFileError(f"{self.path}: cannot be read: {e.strerror}") from None
        return int(text) if text.isdigit() else None

    def acquire(self) -> None:
        """
        Write this process's id, replacing a stale file.

        :raises PIDFileError: a running daemon holds the file, or it cannot
            be written.
        """
        pid = self._read()
        if pid is not None and pid != os.getpid() and _running_daemon(pid):
            raise PIDFileError(
                f"{self.path}: shijid is already running as process {pid}"
            )
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            partial.write_text(f"{os.getpid()}\n")
            os.replace(partial, self.path)
        except OSError as e:
            raise PIDFileError(
                f"{self.path}: cannot be written: {e.strerror}"
            ) from None

    def release(self) -> None:
        """Remove the file if it still names this process."""
        try:
            if self._read() == os.getpid():
                self.path.unlink()
        except (OSError, PIDFileError):
            pass


class PIDFileService(service.Service):
    """
    Holds the PID file while the daemon runs: acquired when the service
    starts (first in shijid's tree, so a held file stops the start before
    anything else begins), released when it stops (last).

    :param path: where the process id is written.
    """

    def __init__(self, path: Path) -> None:
        self.pidfile = PIDFile(path)

    def startService(self) -> None:
        """:raises PIDFileError: see :meth:`PIDFile.acquire`."""
        self.pidfile.acquire()
        super().startService()

    def stopService(self) -> None:
        super().stopService()
        self.pidfile.release()
