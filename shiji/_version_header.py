"""
The version header's value, ``<api>-<version>+<mode>``: parsed and written
here only.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

__all__ = ["API_MODES", "VersionHeader", "version_and_mode"]

#: The modes a version header may name: ``prod`` and ``test``.
API_MODES = frozenset({"prod", "test"})


class VersionHeader(NamedTuple):
    """
    One value of the version header, such as ``myapi-1.0+prod``: the API's
    name, the version asked for and the mode (``prod`` or ``test``).
    """

    api: str
    version: str
    mode: str = "prod"

    def __str__(self) -> str:
        return f"{self.api}-{self.version}+{self.mode}"

    @classmethod
    def parse(cls, value: str, api: str) -> Optional[VersionHeader]:
        """
        ``value`` read as a header for ``api`` (whose name is compared without
        regard to case), or ``None`` if it names another API or no known mode.
        The version is returned as written: the version router decides
        whether it exists.
        """
        found = version_and_mode(value, api)
        return None if found is None else cls(api, *found)


def version_and_mode(value: str, api: str) -> Optional[Tuple[str, str]]:
    """
    :meth:`VersionHeader.parse` without the object, for the router: the
    version and mode of ``value`` read as a header for ``api``, or ``None``.
    """
    prefix_length = len(api) + 1
    if value[:prefix_length].lower() != api.lower() + "-":
        return None
    version, plus, mode = value[prefix_length:].rpartition("+")
    if plus and mode in API_MODES:
        return version, mode
    return None
