"""
The ``shiji_admin`` command.

- ``shiji_admin -A mylogin_api -V 1.0`` creates the API package (or adds the
  version to it);
- ``shiji_admin -C shijid.conf`` writes a configuration stub;
- ``shiji_admin -D mylogin_api -T json|html|markdown|fogbugz [-o FILE]``
  documents an API;
- ``shiji_admin -D mylogin_api -T openapi -V 1.0 [-o FILE]`` writes one
  version's OpenAPI 3.1 document, and ``-T openapi -o DIR`` every version's
  and an ``index.json``; ``--prefix`` (the API's ``[apis]`` expression,
  ``--mount`` a path saying the same) and ``--server`` (a base URL) say
  where the API is served.

``-p DIR`` is where API packages are created and imported from (the current
directory by default).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .._imports import import_failure
from ..config import ConfigError, GeneralConfig, load_config
from ..docs.html import html_document
from ..docs.model import APIDoc, describe_api
from ..docs.openapi import openapi_document, openapi_index
from ..docs.prefix import ServedPrefix, default_prefix, served_prefix
from ..docs.render import json_document, markdown_document
from ..urldispatch import APIDefinitionError
from .scaffold import ScaffoldError, add_version, create_api
from .stub import config_stub

__all__ = ["main"]

#: Document renderers, given the API and the name of its version header.
# Each takes the API, the version header's name, where the API is served and
# the server's address.
RENDERERS: Dict[str, Callable[[APIDoc, str, ServedPrefix, str], str]] = {
    "json": lambda doc, header, prefix, server: _json(json_document(doc)),
    "html": lambda doc, header, prefix, server: html_document(
        doc, header, prefix, server=server
    ),
    "fogbugz": lambda doc, header, prefix, server: html_document(
        doc, header, prefix, server=server
    ),
    "markdown": lambda doc, header, prefix, server: markdown_document(
        doc, header, prefix
    ),
}


def _listen_url(config: GeneralConfig) -> str:
    host = config.listen_ip
    # A wildcard address is reached on the loopback one of its family.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.tls_certificate is not None else "http"
    return f"{scheme}://{host}:{config.listen_port}"


#: Where shijid listens unless configured otherwise.
_DEFAULT_SERVER = _listen_url(GeneralConfig())


class AdminError(Exception):
    """A request shiji_admin cannot carry out; the message says why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shiji_admin",
        description="Scaffold Shiji APIs, write configuration stubs, document APIs.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "-A", "--api", metavar="NAME", help="create an API, or add -V to it"
    )
    action.add_argument(
        "-C", "--config", metavar="PATH", help="write a configuration stub"
    )
    action.add_argument(
        "-D", "--document", metavar="API", help="document an API package"
    )
    parser.add_argument(
        "-V", "--version", metavar="VERSION", help="the version for -A, e.g. 1.0"
    )
    parser.add_argument(
        "-T",
        "--template",
        choices=sorted([*RENDERERS, "openapi"]),
        default="json",
        help="documentation format",
    )
    parser.add_argument(
        "-c",
        "--shijid-config",
        metavar="FILE",
        help=(
            "with -D: document the API as the shijid configuration FILE serves "
            "it (its address, its [apis] expression, its version header and "
            "base_path); the options below override it"
        ),
    )
    parser.add_argument(
        "--prefix",
        "--mount",
        dest="prefix",
        metavar="REGEX",
        help=(
            "where the API is served, for OpenAPI: its [apis] expression, "
            "e.g. myloginapi or (myloginapi|login) (default: the API's name)"
        ),
    )
    parser.add_argument(
        "--server",
        metavar="URL",
        help=(
            f"the server's base URL, for OpenAPI (default: {_DEFAULT_SERVER}; "
            "empty: where the document is read from)"
        ),
    )
    parser.add_argument(
        "--version-header",
        metavar="NAME",
        help="the version header the documents name (default: X-API-Version)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE, not standard output"
    )
    parser.add_argument(
        "-p",
        "--path",
        metavar="DIR",
        help="where API packages live (default: .)",
    )
    return parser


def load_api(name: str, path: Path) -> Any:
    """
    Import the API package ``name`` from ``path``.

    :raises AdminError: it does not exist or cannot be imported.
    """
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name.split(".")[0] or e.name == name:
            raise AdminError(f"no API package {name!r} in {path}") from None
        raise AdminError(import_failure(name, e)) from None
    except Exception as e:
        raise AdminError(import_failure(name, e)) from None


def _write(text: str, output: Optional[str]) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        Path(output).write_text(text, encoding="utf-8")


def _served_prefix(doc: APIDoc, options: argparse.Namespace) -> ServedPrefix:
    # --mount took a path (/myloginapi): the same segment, written as one.
    pattern = (options.prefix or "").strip("/")
    if not pattern:
        return default_prefix(doc.api_name)
    return served_prefix(pattern, doc.api_name)


def _write_openapi(doc: APIDoc, options: argparse.Namespace) -> None:
    prefix = _served_prefix(doc, options)

    def document(version: str) -> str:
        return _json(
            openapi_document(
                doc,
                version,
                prefix=prefix,
                server=options.server.rstrip("/"),
                version_header=options.version_header,
            )
        )

    if options.version:
        try:
            _write(document(options.version), options.output)
        except KeyError:
            known = ", ".join(v.version for v in doc.versions)
            raise AdminError(
                f"{doc.api_name} has no version {options.version} (it has {known})"
            ) from None
        return
    if not options.output:
        raise AdminError(
            "-T openapi needs -V VERSION, or -o DIRECTORY for every version"
        )
    directory = Path(options.output)
    directory.mkdir(parents=True, exist_ok=True)

    def name(version: str) -> str:
        return f"{doc.api_name}-{version}.openapi.json"

    for version in doc.versions:
        (directory / name(version.version)).write_text(document(version.version))
    (directory / "index.json").write_text(_json(openapi_index(doc, name)))


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _scaffold(api_name: str, version: Optional[str], path: Path) -> List[Path]:
    if not version:
        raise AdminError("-A needs -V VERSION, e.g. -A mylogin_api -V 1.0")
    package = path / api_name
    if package.exists():
        return add_version(package, version)
    return create_api(path, api_name, version)


def _apply_shijid_config(options: argparse.Namespace) -> None:
    """
    Fill the options not given on the command line from the shijid
    configuration named by ``--shijid-config``, or from shijid's defaults.
    """
    general = GeneralConfig()
    if options.shijid_config:
        if not options.document:
            raise AdminError("-c/--shijid-config goes with -D")
        try:
            config = load_config(options.shijid_config)
        except ConfigError as e:
            raise AdminError(str(e)) from None
        general = config.general
        expressions = dict(config.apis)
        if options.document not in expressions:
            listed = ", ".join(expressions)
            raise AdminError(
                f"{options.shijid_config}: [apis] does not list "
                f"{options.document} (it lists {listed})"
            )
        if options.prefix is None:
            options.prefix = expressions[options.document]
        if options.server is None:
            options.server = _listen_url(general)
        if options.path is None and general.base_path is not None:
            options.path = str(general.base_path)
    if options.server is None:
        options.server = _DEFAULT_SERVER
    if options.version_header is None:
        options.version_header = general.version_header
    if options.path is None:
        options.path = "."


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run shiji_admin; returns the exit status."""
    options = _parser().parse_args(argv)
    try:
        _apply_shijid_config(options)
    except AdminError as e:
        print(f"shiji_admin: error: {e}", file=sys.stderr)
        return 1
    path = Path(options.path).resolve()
    try:
        if options.api:
            for written in _scaffold(options.api, options.version, path):
                print(f"wrote {written}")
        elif options.config:
            target = Path(options.config)
            if target.exists():
                raise AdminError(f"{target} exists already; not overwriting it")
            target.write_text(config_stub(), encoding="utf-8")
            print(f"wrote {target}")
        else:
            api = load_api(options.document, path)
            try:
                doc = describe_api(api)
            except (AttributeError, APIDefinitionError) as e:
                raise AdminError(
                    f"{options.document} is not a Shiji API package: {e}"
                ) from None
            if options.template == "openapi":
                _write_openapi(doc, options)
            else:
                render = RENDERERS[options.template]
                _write(
                    render(
                        doc,
                        options.version_header,
                        _served_prefix(doc, options),
                        options.server.rstrip("/"),
                    ),
                    options.output,
                )
    except (AdminError, ScaffoldError, OSError) as e:
        print(f"shiji_admin: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
