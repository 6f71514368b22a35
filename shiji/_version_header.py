"""
The version header's value, ``<api>-<version>+<mode>``: parsed and written
here only.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

__all__ = ["API_MODES", "VersionHeader"]

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
        prefix_length = len(api) + 1
        if value[:prefix_length].lower() != api.lower() + "-":
            return None
        version, plus, mode = value[prefix_length:].rpartition("+")
        if not plus or mode not in API_MODES:
            return None
        return cls(api, version, mode)
