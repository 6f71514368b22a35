"""
Mutation testing of shiji.auth (its _cookies.py and _access.py) and
shiji/webapi.py. Run it as
``tools/mutation``, which provides the virtualenv (tools/.venv-mutation) this
file runs in.

A run goes like this:

1. The checkout, less virtualenvs, caches and VCS data, is copied to a work
   directory (outside the checkout), and mutmut's configuration is appended to
   the copy's pyproject.toml: nothing in the checkout is written to.
2. Each module's test files run once on the unmutated copy, in a fresh pytest
   process. They must pass, or no mutant could be judged.
3. ``mutmut run`` makes the mutants and tests each against the tests it saw
   calling the mutated function. Every mutant runs in a process forked from
   mutmut's fork server, which imports nothing of the project beforehand
   (``forkserver_warmup = "none"``): the example APIs apply Shiji's decorators
   at import time, so a mutant of ``json_arguments`` or ``access`` only takes
   effect if the modules using them are imported after it is chosen.
4. Every mutant that mutmut did not report killed is tried again in a fresh
   ``python -m pytest`` process: the mutant is applied to a pristine copy of
   the source (``mutmut apply``) and the module's whole list of test files
   runs. Only a mutant that passes there is a confirmed survivor. This is
   needed because mutmut's per-function choice of tests credits the calls
   made while a module is imported (most of Shiji's decorator factories) to
   whichever test happened to run first, so their mutants "survive" tests that
   never used them, and because mutmut reports a mutant whose tests could not
   even start (one that breaks the import of the example API) as a timeout.
5. Confirmed survivors are compared with tools/mutation-equivalent.md, by the
   mutated function and the lines the mutation changes (mutmut's numbering
   changes whenever the code does). The run fails if one is not listed there.

Tests that start daemons (tests/test_hardening.py, test_daemon.py,
test_fuzz.py, test_bench.py and everything marked ``slow``) are left out: they
exercise these modules through subprocesses, which mutmut cannot follow, and
take minutes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

# --------------------------------------------------------------------------
# What is mutated, and which tests judge it.
#
# Each module's list holds the test files that import it and those that call
# into it through the example API (tests/conftest.py's client); found with
# grep and by tracing which test files call its functions. A test file that
# imports a module but is missing from its list is reported at the start of
# each run.
#: What checks the argument decorators and the schema language.
ARGUMENT_TESTS = (
    "tests/test_schemas.py",
    "tests/test_arguments.py",
    "tests/test_compat.py",
    "tests/test_spec_samples.py",
    "tests/test_example.py",
    "tests/test_errors.py",
    "tests/test_login_api.py",
)

MODULES: Dict[str, Tuple[str, ...]] = {
    # In the order they run: the slowest file (test_login_api.py, whose rate
    # limits and password hashing take seconds) last, since a run stops at
    # the first failure.
    "shiji/auth/_cookies.py": (
        "tests/test_access.py",
        "tests/test_compat.py",
        "tests/test_secure_cookies.py",
        "tests/test_auth_basic.py",
        "tests/test_config.py",
        "tests/test_login_api.py",
    ),
    "shiji/auth/_access.py": (
        "tests/test_access.py",
        "tests/test_compat.py",
        "tests/test_secure_cookies.py",
        "tests/test_auth_basic.py",
        "tests/test_config.py",
        "tests/test_login_api.py",
    ),
    "shiji/_arguments.py": ARGUMENT_TESTS,
    "shiji/_body.py": ARGUMENT_TESTS,
    "shiji/_text_arguments.py": ARGUMENT_TESTS,
    "shiji/_paging.py": ARGUMENT_TESTS,
    "shiji/_schema.py": ARGUMENT_TESTS,
    "shiji/_nodes.py": ARGUMENT_TESTS,
    "shiji/_rules.py": ARGUMENT_TESTS,
    "shiji/_json_schema.py": ARGUMENT_TESTS,
    "shiji/_returns.py": ARGUMENT_TESTS,
    "shiji/webapi.py": (
        "tests/test_arguments.py",
        "tests/test_errors.py",
        "tests/test_compat.py",
        "tests/test_auth_basic.py",
        "tests/test_spec_samples.py",
        "tests/test_access.py",
        "tests/test_secure_cookies.py",
        "tests/test_handlers.py",
        "tests/test_example.py",
        "tests/test_openapi.py",
        "tests/test_admin.py",
        "tests/test_lifecycle.py",
        "tests/test_site.py",
        "tests/test_login_api.py",
    ),
}

# Never part of a run: test files that start shijid or other subprocesses,
# and the codebase checks (names, lint, types), which mention every module.
EXCLUDED_TEST_FILES = (
    "tests/test_hardening.py",
    "tests/test_daemon.py",
    "tests/test_fuzz.py",
    "tests/test_bench.py",
    "tests/test_codebase.py",
    "tests/test_readme.py",
)

# Options of every pytest run, mutmut's and the fresh ones alike. Plugins are
# not loaded from entry points (PYTEST_DISABLE_PLUGIN_AUTOLOAD below): these
# tests need only pytest-twisted, and importing hypothesis's and
# schemathesis's plugins would more than double the start-up time of every
# run.
PYTEST_ARGS = ("-p", "pytest_twisted", "-p", "no:cacheprovider", "-m", "not slow")
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONIOENCODING": "utf-8"}

# Directories the tests read besides tests/ and shiji/ (mutmut copies them
# into its mutants/ tree).
ALSO_COPY = ("examples/", "templates/", "conf/", "twisted/")

# Left out of the copy of the checkout, by name at any depth.
COPY_IGNORE = {
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "build",
    "dist",
    "mutants",
    "dropin.cache",
}

# mutmut's statuses (``mutmut results``). A mutant mutmut reports killed is
# taken as killed; every other tested one is re-run in a fresh process.
KILLED_STATUSES = {"killed", "caught by type check"}
NOT_TESTED_STATUSES = {"skipped"}

# A fresh run taking this many times as long as the unmutated run (and at
# least FRESH_TIMEOUT_MIN seconds) is stopped and counts as killed.
FRESH_TIMEOUT_FACTOR = 10
FRESH_TIMEOUT_MIN = 60.0

EQUIVALENTS_FILE = "tools/mutation-equivalent.md"
EQUIVALENTS_SECTION = "## Equivalent mutants"

# --------------------------------------------------------------------------


class MutationError(Exception):
    """A run that cannot go on (exit status 2)."""


@dataclasses.dataclass(frozen=True)
class MutantKey:
    """
    What identifies a mutant across code changes: the mutated function and
    the lines the mutation removes and adds, whitespace-normalised.
    """

    module: str  # shiji.auth._cookies
    function: str  # CookieSigner.verify, or access
    removed: Tuple[str, ...]
    added: Tuple[str, ...]

    def describe(self) -> str:
        changes = [f"- {line}" for line in self.removed]
        changes += [f"+ {line}" for line in self.added]
        return f"{self.module}: {self.function}  " + "  ".join(
            f"`{c}`" for c in changes
        )


@dataclasses.dataclass
class Equivalent:
    key: MutantKey
    reason: str
    line: int
    matched: bool = False


@dataclasses.dataclass
class Mutant:
    name: str  # shiji.auth._cookies.xǁCookieSignerǁverify__mutmut_12
    path: str  # shiji/auth/_cookies.py
    status: str  # as mutmut reported it
    fresh: Optional[str] = None  # "survived", "killed" or "timeout" once re-run
    diff: str = ""
    key: Optional[MutantKey] = None
    equivalent: Optional[Equivalent] = None

    @property
    def survived(self) -> bool:
        return self.fresh == "survived"


# -- processes --------------------------------------------------------------

_children_lock = threading.Lock()
_children: set = set()


def run(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Optional[Dict[str, str]] = None,
    timeout: Optional[float] = None,
    output: Optional[Path] = None,
) -> Tuple[Optional[int], str]:
    """
    Run ``command`` in a session of its own, so that it and everything it
    starts can be stopped together. Returns the exit status (None if it was
    stopped at ``timeout`` seconds) and its output (or "" when the output
    goes to the file ``output``).
    """
    full_env = dict(os.environ)
    full_env.pop("MUTANT_UNDER_TEST", None)
    full_env.update(env or {})
    sink = open(output, "wb") if output else subprocess.PIPE  # noqa: SIM115
    try:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if output:
            sink.close()  # type: ignore[union-attr]
    with _children_lock:
        _children.add(process)
    try:
        out, _ = process.communicate(timeout=timeout)
        return process.returncode, (out or b"").decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        _kill(process)
        process.communicate()
        return None, ""
    finally:
        with _children_lock:
            _children.discard(process)


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def kill_children() -> None:
    """Stop every process this run started that is still running."""
    with _children_lock:
        for process in list(_children):
            _kill(process)


# -- the work directory -----------------------------------------------------


def default_workdir(checkout: Path) -> Path:
    configured = os.environ.get("SHIJI_MUTATION_WORKDIR")
    if configured:
        return Path(configured).resolve()
    digest = hashlib.sha256(str(checkout).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"shiji-mutation-{digest}"


WORKDIR_MARKER = ".shiji-mutation-workdir"


def reset_workdir(workdir: Path) -> None:
    """Empty ``workdir``, refusing to if it holds anything but a past run."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / WORKDIR_MARKER).exists():
            raise MutationError(
                f"{workdir} is not empty and is not a work directory of "
                "tools/mutation; choose another one (SHIJI_MUTATION_WORKDIR)"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / WORKDIR_MARKER).write_text("made by tools/mutation; emptied by it\n")


def copy_tree(source: Path, target: Path, also_ignore: Sequence[Path] = ()) -> None:
    ignored_paths = {p.resolve() for p in also_ignore}

    def ignore(directory: str, names: List[str]) -> List[str]:
        return [
            name
            for name in names
            if name in COPY_IGNORE
            or name.startswith(".venv")
            or name.endswith(".egg-info")
            or (Path(directory) / name).resolve() in ignored_paths
        ]

    shutil.copytree(source, target, ignore=ignore, symlinks=True)


def toml_value(value: object) -> str:
    # JSON strings, lists of strings and booleans are valid TOML as well.
    return json.dumps(value, ensure_ascii=False)


def write_mutmut_config(tree: Path, modules: Sequence[str]) -> None:
    """Append mutmut's configuration to the copy's pyproject.toml."""
    tests: List[str] = []
    for module in modules:
        tests += [t for t in MODULES[module] if t not in tests]
    settings = {
        # All of shiji/ goes into mutmut's tree, so that the package imports
        # from there; only the two modules are mutated.
        "source_paths": ["shiji/"],
        "only_mutate": list(modules),
        "also_copy": list(ALSO_COPY),
        "pytest_add_cli_args": list(PYTEST_ARGS),
        "pytest_add_cli_args_test_selection": tests,
        "process_isolation": "forkserver",
        "forkserver_warmup": "none",
        # The copy is not a git checkout; each run starts from scratch anyway.
        "use_git_change_detection": False,
    }
    pyproject = tree / "pyproject.toml"
    lines = pyproject.read_text(encoding="utf-8").splitlines()
    # Should the project ever configure mutmut itself, this run's settings
    # replace its table.
    kept: List[str] = []
    skipping = False
    for line in lines:
        if line.strip().startswith("["):
            skipping = line.strip() == "[tool.mutmut]"
        if not skipping:
            kept.append(line)
    kept += ["", "# Written by tools/mutation.", "[tool.mutmut]"]
    kept += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    pyproject.write_text("\n".join(kept) + "\n", encoding="utf-8")


# -- checks before the run ----------------------------------------------------


def dotted(path: str) -> str:
    """shiji/auth/__init__.py -> shiji.auth; shiji/webapi.py -> shiji.webapi"""
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def public_name(path: str) -> str:
    """What tests import a module as: shiji/auth/_cookies.py -> auth; the
    private modules at the top (shiji/_rules.py) through shiji.webapi."""
    parts = dotted(path).split(".")
    public = []
    for part in parts[1:]:
        if part.startswith("_"):
            break
        public.append(part)
    return public[-1] if public else "webapi"


def unlisted_test_files(checkout: Path, module: str) -> List[str]:
    """Test files that import ``module`` (shiji/auth/_cookies.py, as
    shiji.auth) but are not listed."""
    name = public_name(module)
    pattern = re.compile(
        rf"\bshiji\.{name}\b|^\s*from shiji import [^\n]*\b{name}\b", re.MULTILINE
    )
    found = []
    for path in sorted((checkout / "tests").glob("test_*.py")):
        relative = path.relative_to(checkout).as_posix()
        if relative in MODULES[module] or relative in EXCLUDED_TEST_FILES:
            continue
        if pattern.search(path.read_text(encoding="utf-8", errors="replace")):
            found.append(relative)
    return found


def pytest_command(python: str, tests: Sequence[str]) -> List[str]:
    return [python, "-m", "pytest", "-x", "-q", "--tb=short", *PYTEST_ARGS, *tests]


def fresh_env(tree: Path) -> Dict[str, str]:
    # The tree's shiji/ comes first, before the checkout's (the virtualenv
    # has the checkout installed in editable mode).
    pythonpath = os.pathsep.join(
        p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p
    )
    return {**PYTEST_ENV, "PYTHONPATH": pythonpath}


def check_imports_from(tree: Path, python: str) -> None:
    code, out = run(
        [python, "-c", "import shiji; print(shiji.__file__)"],
        cwd=tree,
        env=fresh_env(tree),
    )
    location = Path(out.strip().splitlines()[-1] if out.strip() else "")
    if code != 0 or tree.resolve() not in location.resolve().parents:
        raise MutationError(f"shiji does not import from {tree} there:\n{out.strip()}")


def baseline(tree: Path, python: str, modules: Sequence[str]) -> Dict[str, float]:
    """Run each module's tests on the unmutated copy; their durations."""
    durations = {}
    for module in modules:
        started = time.monotonic()
        code, out = run(
            pytest_command(python, MODULES[module]), cwd=tree, env=fresh_env(tree)
        )
        durations[module] = time.monotonic() - started
        if code != 0:
            raise MutationError(
                f"the tests of {module} fail on the unmutated code "
                f"(exit status {code}); fix them first:\n{tail(out, 40)}"
            )
        print(f"  {module}: {last_line(out)} ({durations[module]:.1f} s)")
    return durations


def tail(text: str, lines: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def last_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[-1].strip("= ") if stripped else ""


# -- mutmut -----------------------------------------------------------------

_PROGRESS = re.compile(r"(\d+)/(\d+)\s+🎉 (\d+).*?⏰ (\d+).*?🙁 (\d+)")


def run_mutmut(tree: Path, mutmut: str, jobs: int, names: Sequence[str]) -> None:
    """``mutmut run``, its output to mutmut.log, its progress shown now and then."""
    log = tree.parent / "mutmut.log"
    result: Dict[str, Optional[int]] = {}

    def target() -> None:
        result["code"], _ = run(
            [mutmut, "run", "--max-children", str(jobs), *names],
            cwd=tree,
            env=PYTEST_ENV,
            output=log,
        )

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    shown = ""
    while worker.is_alive():
        worker.join(timeout=30)
        progress = _last_progress(log)
        if progress and progress != shown:
            print(f"  {progress}", flush=True)
            shown = progress
    code = result.get("code")
    if code != 0:
        raise MutationError(
            f"mutmut run failed (exit status {code}); its output is in {log}:\n"
            + tail(_printable(log), 30)
        )


def _printable(log: Path) -> str:
    """mutmut's log less the spinner frames it redraws with carriage returns."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    lines = []
    for raw in text.split("\n"):
        frames = [f for f in raw.split("\r") if f.strip()]
        if frames:
            lines.append(frames[-1])
    return "\n".join(lines)


def _last_progress(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4000))
            chunk = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    matches = _PROGRESS.findall(chunk)
    if not matches:
        return ""
    done, total, killed, timeouts, survived = matches[-1]
    return (
        f"mutmut: {done}/{total} tested, {killed} killed, "
        f"{timeouts} timed out, {survived} survived"
    )


def mutmut_results(tree: Path, mutmut: str) -> Dict[str, str]:
    """Every mutant's status, as ``mutmut results`` reports it."""
    code, out = run([mutmut, "results", "--all", "true"], cwd=tree, env=PYTEST_ENV)
    if code != 0:
        raise MutationError(f"mutmut results failed:\n{tail(out, 20)}")
    statuses = {}
    for line in out.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            statuses[name] = status.strip()
    return statuses


def mutant_path(name: str) -> str:
    """shiji.auth._access.x_access__mutmut_3 -> shiji/auth/_access.py"""
    module = name.partition("__mutmut_")[0].rpartition(".")[0]
    module = module.removesuffix(".__init__")
    for path in MODULES:
        if dotted(path) == module:
            return path
    return module.replace(".", "/") + ".py"


def function_name(name: str) -> Tuple[str, str]:
    """shiji.auth._cookies.xǁCookieSignerǁverify__mutmut_12 -> (shiji.auth._cookies, CookieSigner.verify)"""
    module, _, mangled = name.partition("__mutmut_")[0].rpartition(".")
    module = module.removesuffix(".__init__")
    if mangled.startswith("xǁ"):
        _, cls, function = mangled.split("ǁ")
        return module, f"{cls}.{function}"
    return module, mangled[2:] if mangled.startswith("x_") else mangled


def changed_lines(diff: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """The removed and added lines of a unified diff, whitespace-normalised."""
    removed: List[str] = []
    added: List[str] = []
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("-"):
            removed.append(" ".join(line[1:].split()))
        elif line.startswith("+"):
            added.append(" ".join(line[1:].split()))
    return tuple(removed), tuple(added)


def mutant_diff(tree: Path, mutmut: str, name: str) -> str:
    code, out = run([mutmut, "show", name], cwd=tree, env=PYTEST_ENV)
    if code != 0:
        raise MutationError(f"mutmut show {name} failed:\n{tail(out, 20)}")
    # The first line is "# <name>: <status>", mutmut's verdict, not ours.
    return "\n".join(line for line in out.splitlines() if not line.startswith("# "))


# -- fresh re-runs --------------------------------------------------------------


class FreshRunner:
    """
    Re-runs mutants, each applied to a pristine copy of the source, with the
    module's test files in a new pytest process; ``jobs`` copies side by side.
    """

    def __init__(
        self,
        tree: Path,
        python: str,
        mutmut: str,
        jobs: int,
        timeouts: Dict[str, float],
    ) -> None:
        self.python = python
        self.mutmut = mutmut
        self.timeouts = timeouts
        self.trees: queue.Queue = queue.Queue()
        for index in range(jobs):
            copy = tree.parent / f"fresh-{index + 1}"
            copy_tree(tree, copy)
            # `mutmut apply` finds the mutants through ./mutants.
            (copy / "mutants").symlink_to(tree / "mutants")
            self.trees.put(copy)
        self.pristine = {module: (tree / module).read_bytes() for module in MODULES}

    @property
    def any_tree(self) -> Path:
        copy: Path = self.trees.queue[0]
        return copy

    def judge(self, mutant: Mutant) -> str:
        copy: Path = self.trees.get()
        source = copy / mutant.path
        try:
            code, out = run(
                [self.mutmut, "apply", mutant.name], cwd=copy, env=PYTEST_ENV
            )
            if code != 0:
                raise MutationError(
                    f"mutmut apply {mutant.name} failed:\n{tail(out, 20)}"
                )
            if source.read_bytes() == self.pristine[mutant.path]:
                raise MutationError(f"mutmut apply {mutant.name} changed nothing")
            # The source is swapped in place, often for one of the same size
            # within the same second: Python could take the bytecode cached
            # for one for the other's.
            for cached in (source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"):
                cached.unlink()
            code, out = run(
                pytest_command(self.python, MODULES[mutant.path]),
                cwd=copy,
                env=fresh_env(copy),
                timeout=self.timeouts[mutant.path],
            )
            if code is None:
                return "timeout"
            if code == 5:
                raise MutationError(f"no test ran for {mutant.name}:\n{tail(out, 20)}")
            return "survived" if code == 0 else "killed"
        finally:
            source.write_bytes(self.pristine[mutant.path])
            self.trees.put(copy)


def rerun(mutants: List[Mutant], runner: FreshRunner, jobs: int) -> None:
    if not mutants:
        return
    done = 0
    last_report = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(runner.judge, m): m for m in mutants}
        try:
            for future in concurrent.futures.as_completed(futures):
                futures[future].fresh = future.result()
                done += 1
                if time.monotonic() - last_report > 30 or done == len(mutants):
                    survived = sum(1 for m in mutants if m.survived)
                    print(
                        f"  re-run {done}/{len(mutants)}, {survived} survived so far",
                        flush=True,
                    )
                    last_report = time.monotonic()
        except BaseException:
            for future in futures:
                future.cancel()
            kill_children()
            raise


# -- the list of equivalent mutants --------------------------------------------

_ENTRY = re.compile(r"^###\s+(?P<module>[\w.]+)\s*:\s*(?P<function>[\w.]+)\s*$")
_REASON_LABEL = re.compile(r"^\s*\**why( it is)? equivalent:?\**:?\s*", re.IGNORECASE)


def load_equivalents(path: Path) -> List[Equivalent]:
    """
    The entries of ``path``'s "## Equivalent mutants" section: each a
    "### <module>: <function>" heading, a ```diff block whose "-" and "+"
    lines are the mutation, and the reason, in prose, after it.
    """
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    entries: List[Equivalent] = []
    errors: List[str] = []
    in_section = False
    current: Optional[dict] = None

    def finish() -> None:
        if current is None:
            return
        where = f"{path.name}:{current['line']}"
        removed, added = changed_lines("\n".join(current["diff"]))
        reason = " ".join(" ".join(current["reason"]).split())
        reason = _REASON_LABEL.sub("", reason).strip()
        if not current["has_diff"]:
            errors.append(f"{where}: no ```diff block")
        elif not removed and not added:
            errors.append(f"{where}: the diff block has no - or + line")
        elif not reason:
            errors.append(f"{where}: no reason given")
        else:
            key = MutantKey(current["module"], current["function"], removed, added)
            entries.append(Equivalent(key, reason, current["line"]))

    fence: Optional[str] = None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if fence is None and stripped.startswith("## "):
            finish()
            current = None
            in_section = stripped == EQUIVALENTS_SECTION
            continue
        if not in_section:
            continue
        if fence is None and stripped.startswith("### "):
            finish()
            match = _ENTRY.match(stripped)
            if match is None:
                errors.append(
                    f"{path.name}:{number}: a heading in {EQUIVALENTS_SECTION!r} "
                    "is '### <module>: <function>'"
                )
                current = None
                continue
            current = {
                "line": number,
                "module": match["module"],
                "function": match["function"],
                "diff": [],
                "has_diff": False,
                "reason": [],
            }
            continue
        if current is None:
            continue
        if fence is None and stripped.startswith("```"):
            fence = stripped[3:].strip() or "text"
            if fence == "diff" and not current["has_diff"]:
                current["has_diff"] = True
            else:
                fence = "other"
            continue
        if fence is not None:
            if stripped.startswith("```"):
                fence = None
            elif fence == "diff":
                current["diff"].append(line)
            continue
        current["reason"].append(line)
    finish()
    if errors:
        raise MutationError(
            f"{path} has malformed entries:\n" + "\n".join(f"  {e}" for e in errors)
        )
    return entries


def entry_template(mutant: Mutant) -> str:
    assert mutant.key is not None
    hunk = [
        line
        for line in mutant.diff.splitlines()
        if not line.startswith(("---", "+++", "@@"))
    ]
    return "\n".join(
        [
            f"### {mutant.key.module}: {mutant.key.function}",
            "",
            "```diff",
            *hunk,
            "```",
            "",
            "Why equivalent: ",
        ]
    )


# -- the run ----------------------------------------------------------------


def select_modules(requested: Sequence[str]) -> List[str]:
    if not requested:
        return list(MODULES)
    chosen = []
    for name in requested:
        module = dotted(name.strip().removesuffix("/"))
        if not module.startswith("shiji.") and module != "shiji":
            module = "shiji." + module
        found = [
            path
            for path in MODULES
            if dotted(path) == module or dotted(path).startswith(module + ".")
        ]
        if not found:
            raise MutationError(f"{name}: not one of {', '.join(MODULES)}")
        chosen += [path for path in found if path not in chosen]
    return chosen


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/mutation",
        description=(
            "Mutation testing of shiji.auth (its _cookies.py and _access.py) and shiji/webapi.py with "
            "mutmut; "
            "every mutant mutmut does not kill is re-run in a fresh pytest "
            f"process, and the survivors are checked against {EQUIVALENTS_FILE}."
        ),
    )
    parser.add_argument(
        "modules",
        nargs="*",
        metavar="MODULE",
        help="shiji/auth/_cookies.py, shiji/auth/_access.py or shiji/webapi.py "
        "(also auth for both of its modules, shiji.webapi); default all",
    )
    parser.add_argument("--checkout", type=Path, required=True, help=argparse.SUPPRESS)
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=min(os.cpu_count() or 1, 2),
        help="mutants tested side by side (default: 2, or 1 on one core)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the copy and mutmut's files go; emptied first "
        "(default: $SHIJI_MUTATION_WORKDIR, else under the temporary directory)",
    )
    parser.add_argument(
        "--report", type=Path, help="also write the report (summary and diffs) here"
    )
    parser.add_argument(
        "--recheck-killed",
        action="store_true",
        help="re-run the mutants mutmut killed in fresh processes too (slow; "
        "checks mutmut's forked runs against fresh ones)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs is at least 1")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    checkout: Path = args.checkout.resolve()
    workdir: Path = (args.workdir or default_workdir(checkout)).resolve()
    if checkout == workdir or checkout in workdir.parents:
        raise MutationError("the work directory must be outside the checkout")
    modules = select_modules(args.modules)
    bin_dir = Path(sys.executable).parent
    python, mutmut = sys.executable, str(bin_dir / "mutmut")
    started = time.monotonic()
    timings: Dict[str, float] = {}

    for module in modules:
        missing = [t for t in MODULES[module] if not (checkout / t).exists()]
        if missing:
            raise MutationError(f"test files of {module} not found: {missing}")
        for test_file in unlisted_test_files(checkout, module):
            print(
                f"note: {test_file} imports {module} but is not among its test "
                "files in tools/mutation.py (MODULES)"
            )
    equivalents = load_equivalents(checkout / EQUIVALENTS_FILE)

    workdir.parent.mkdir(parents=True, exist_ok=True)
    lock = open(workdir.parent / f"{workdir.name}.lock", "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise MutationError(f"another run is using {workdir}") from None

    print(f"Copying the checkout to {workdir}/tree")
    reset_workdir(workdir)
    tree = workdir / "tree"
    copy_tree(checkout, tree, also_ignore=[workdir])
    write_mutmut_config(tree, modules)
    check_imports_from(tree, python)

    print("Running the tests on the unmutated code")
    phase = time.monotonic()
    durations = baseline(tree, python, modules)
    timings["unmutated tests"] = time.monotonic() - phase

    print(f"Running mutmut ({args.jobs} at a time); log: {workdir}/mutmut.log")
    phase = time.monotonic()
    names = [] if len(modules) == len(MODULES) else [dotted(m) + ".*" for m in modules]
    run_mutmut(tree, mutmut, args.jobs, names)
    timings["mutmut"] = time.monotonic() - phase

    mutants = [
        Mutant(name, mutant_path(name), status)
        for name, status in sorted(mutmut_results(tree, mutmut).items())
        if mutant_path(name) in modules
    ]
    if not mutants:
        raise MutationError("mutmut made no mutants")
    rechecked = [
        m
        for m in mutants
        if m.status not in NOT_TESTED_STATUSES
        and (args.recheck_killed or m.status not in KILLED_STATUSES)
    ]
    for m in mutants:
        if m not in rechecked and m.status in KILLED_STATUSES:
            m.fresh = "killed"

    print(f"Re-running {len(rechecked)} mutants in fresh pytest processes")
    phase = time.monotonic()
    runner = FreshRunner(
        tree,
        python,
        mutmut,
        args.jobs,
        {
            module: max(FRESH_TIMEOUT_MIN, FRESH_TIMEOUT_FACTOR * seconds)
            for module, seconds in durations.items()
        },
    )
    check_imports_from(runner.any_tree, python)
    rerun(rechecked, runner, args.jobs)
    timings["fresh re-runs"] = time.monotonic() - phase

    survivors = [m for m in mutants if m.survived]
    for m in survivors:
        m.diff = mutant_diff(tree, mutmut, m.name)
        module, function = function_name(m.name)
        m.key = MutantKey(module, function, *changed_lines(m.diff))
        for entry in equivalents:
            if entry.key == m.key:
                m.equivalent = entry
                entry.matched = True
                break
    timings["total"] = time.monotonic() - started

    report = format_report(mutants, rechecked, equivalents, modules, timings, args)
    (workdir / "report.txt").write_text(report, encoding="utf-8")
    if args.report:
        args.report.write_text(report, encoding="utf-8")
    print()
    print(report, end="")
    print(f"\nReport: {workdir}/report.txt; mutmut's files: {tree}/mutants")
    unlisted = [m for m in survivors if m.equivalent is None]
    return 1 if unlisted else 0


def format_report(
    mutants: List[Mutant],
    rechecked: List[Mutant],
    equivalents: List[Equivalent],
    modules: Sequence[str],
    timings: Dict[str, float],
    args: argparse.Namespace,
) -> str:
    out: List[str] = []
    survivors = [m for m in mutants if m.survived]
    unlisted = [m for m in survivors if m.equivalent is None]
    listed = [m for m in survivors if m.equivalent is not None]

    def count(items: Iterator[Mutant]) -> int:
        return sum(1 for _ in items)

    out.append(f"Mutation testing of {', '.join(modules)}")
    out.append("")
    header = f"  {'':18}{'mutants':>9}{'killed':>9}{'survived':>10}"
    out.append(header)
    for module in [*modules, "total"]:
        mine = [m for m in mutants if module in ("total", m.path)]
        tested = [m for m in mine if m.status not in NOT_TESTED_STATUSES]
        out.append(
            f"  {module:18}{len(mine):>9}"
            f"{count(m for m in tested if not m.survived):>9}"
            f"{count(m for m in tested if m.survived):>10}"
        )
    out.append("")
    statuses: Dict[str, int] = {}
    for m in mutants:
        statuses[m.status] = statuses.get(m.status, 0) + 1
    out.append(
        "  mutmut's verdicts: "
        + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    )
    out.append(
        f"  re-run in fresh pytest processes: {len(rechecked)}"
        + (" (every tested mutant)" if args.recheck_killed else "")
        + f"; {count(m for m in rechecked if not m.survived)} of them killed there"
        + (
            f" ({count(m for m in rechecked if m.fresh == 'timeout')} by timing out)"
            if any(m.fresh == "timeout" for m in rechecked)
            else ""
        )
    )
    flipped = [m for m in rechecked if m.status in KILLED_STATUSES and m.survived]
    if args.recheck_killed:
        out.append(
            f"  killed by mutmut but surviving a fresh run: {len(flipped)}"
            + (": " + ", ".join(m.name for m in flipped) if flipped else "")
        )
    skipped = count(m for m in mutants if m.status in NOT_TESTED_STATUSES)
    if skipped:
        out.append(f"  not tested (pragma: no mutate): {skipped}")
    out.append(
        f"  confirmed survivors: {len(survivors)} "
        f"({len(listed)} listed as equivalent, {len(unlisted)} not listed)"
    )
    out.append(
        "  time: "
        + ", ".join(
            f"{name} {seconds / 60:.1f} min" for name, seconds in timings.items()
        )
    )

    def section(title: str, items: List[Mutant]) -> None:
        if not items:
            return
        out.append("")
        out.append(title)
        for m in items:
            assert m.key is not None
            out.append("")
            out.append(f"{m.name}  (mutmut: {m.status})")
            out.append(f"  {m.key.module}: {m.key.function}")
            if m.equivalent is not None:
                out.append(
                    f"  equivalent ({EQUIVALENTS_FILE}:{m.equivalent.line}): "
                    f"{m.equivalent.reason}"
                )
            out.append(m.diff)

    section(f"Confirmed survivors NOT listed in {EQUIVALENTS_FILE}:", unlisted)
    section("Confirmed survivors listed as equivalent:", listed)

    stale = [
        e
        for e in equivalents
        if not e.matched
        and any(
            e.key.module == m.removesuffix(".py").replace("/", ".") for m in modules
        )
    ]
    if stale:
        out.append("")
        out.append(
            f"Entries of {EQUIVALENTS_FILE} that match no survivor "
            "(the code or the tests changed; remove them):"
        )
        out += [f"  line {e.line}: {e.key.describe()}" for e in stale]
    if unlisted:
        out.append("")
        out.append(
            "Kill each unlisted survivor with a test, or, if no test can tell it "
            f"from the original, add it to {EQUIVALENTS_FILE}'s "
            f"{EQUIVALENTS_SECTION!r} section with the reason:"
        )
        for m in unlisted:
            out.append("")
            out.append(entry_template(m))
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except MutationError as error:
        kill_children()
        print(f"tools/mutation: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        kill_children()
        print("tools/mutation: interrupted", file=sys.stderr)
        sys.exit(130)
