"""
The two OpenAPI linters the documents are held to: Redocly CLI (its
recommended rules) and Spectral (``spectral:oas``). ``.ci/tools`` installs
them, pinned, into ``.ci/node``; otherwise they are looked for on ``PATH``.
Each run lints several documents at once and returns what the linter
found, parsed from its JSON output.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

TESTS = Path(__file__).resolve().parent
NODE_BIN = TESTS.parent / ".ci" / "node" / "node_modules" / ".bin"
REDOCLY_CONFIG = TESTS / "redocly.yaml"
SPECTRAL_RULESET = TESTS / "spectral.yaml"

# No telemetry, no update check: the runs stay offline and quiet.
_ENV = {
    **os.environ,
    "REDOCLY_TELEMETRY": "off",
    "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true",
    "NO_COLOR": "1",
}


def find(name):
    """The linter ``name`` (``redocly``, ``spectral``): its path, or ``None``."""
    pinned = NODE_BIN / name
    if pinned.is_file() and os.access(pinned, os.X_OK):
        return str(pinned)
    return shutil.which(name)


def _run(command, timeout):
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=_ENV
    )


def redocly(paths, timeout=120):
    """
    ``redocly lint`` of ``paths``: its exit status and one report per
    document, in order (``{"totals": ..., "problems": [...]}``).
    """
    run = _run(
        [
            find("redocly"),
            "lint",
            "--config",
            str(REDOCLY_CONFIG),
            "--format",
            "json",
            *map(str, paths),
        ],
        timeout,
    )
    # One JSON object per document, one after the other; the Node.js
    # deprecation banner goes to standard error.
    reports = []
    decoder = json.JSONDecoder()
    text = run.stdout.strip()
    while text:
        report, end = decoder.raw_decode(text)
        reports.append(report)
        text = text[end:].strip()
    return run.returncode, reports


def spectral(paths, timeout=120):
    """``spectral lint`` of ``paths``: its exit status and every problem
    found (each naming its ``source`` document)."""
    run = _run(
        [
            find("spectral"),
            "lint",
            "--ruleset",
            str(SPECTRAL_RULESET),
            "--format",
            "json",
            "--quiet",
            *map(str, paths),
        ],
        timeout,
    )
    return run.returncode, json.loads(run.stdout)
