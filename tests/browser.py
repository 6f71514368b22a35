"""
Headless Chromium for the documentation pages' tests: how wide a page lays
out in a narrow window, and screenshots. Every run is bounded in time and
leaves no process behind (its whole process group is killed).

A headless window is never narrower than 500 pixels, so a page is measured
and photographed inside a frame of the width asked for, in a window of
that width; the frame's page reports its scroll width to the outer page,
whose DOM Chromium prints.
"""

import contextlib
import html
import os
import re
import shutil
import signal
import struct
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
]

FRAME = """<!DOCTYPE html>
<html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="page" src="{page}" style="display:block;border:0;width:{width}px;height:{height}px"></iframe>
<script>
var frame = document.getElementById("page");
frame.addEventListener("load", function () {{
  var root = frame.contentDocument.documentElement;
  document.documentElement.setAttribute("data-scroll-width", String(root.scrollWidth));
  document.documentElement.setAttribute("data-client-width", String(root.clientWidth));
}});
</script></body></html>
"""


def available():
    """Whether Chromium is installed."""
    return os.access(CHROMIUM, os.X_OK)


def run_chromium(args, profile, timeout=90):
    """Run Chromium with ``args`` and a fresh ``profile`` directory; returns
    ``(exit status, stdout, stderr)``."""
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        raise
    finally:
        # Helpers Chromium started stay in its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return (
        process.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
    )


def _frame(page, tmp_path, width, height):
    page_file = tmp_path / "page.html"
    page_file.write_bytes(page if isinstance(page, bytes) else page.encode("utf-8"))
    frame_file = tmp_path / "frame.html"
    frame_file.write_text(
        FRAME.format(page=html.escape(page_file.name), width=width, height=height)
    )
    return frame_file


def scroll_width(page, tmp_path, width=360, height=800):
    """
    The scroll width of ``page`` (HTML) laid out ``width`` pixels wide, and
    its client width: ``(scroll, client)``.
    """
    frame = _frame(page, tmp_path, width, height)
    status, dom, err = run_chromium(
        [f"--window-size={width},{height}", "--dump-dom", frame.as_uri()],
        tmp_path / "profile",
    )
    assert status == 0, err
    found = re.search(r'data-scroll-width="([0-9]+)" data-client-width="([0-9]+)"', dom)
    assert found, dom[:500]
    return int(found.group(1)), int(found.group(2))


def png_size(path):
    """The width and height of a PNG file."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def screenshot(page, tmp_path, name, width=360, height=800):
    """A screenshot of ``page`` laid out ``width`` pixels wide, as a PNG
    file ``name`` in ``tmp_path``."""
    frame = _frame(page, tmp_path, width, height)
    target = tmp_path / name
    status, _, err = run_chromium(
        [f"--window-size={width},{height}", f"--screenshot={target}", frame.as_uri()],
        tmp_path / "profile",
    )
    assert status == 0, err
    return target
