"""
Version lifecycle: deprecation and sunset, announced in response headers.

A version package declares ``deprecation = Deprecation(...)``; every response
of that version then carries ``Deprecation`` (RFC 9745), ``Sunset``
(RFC 8594) and ``Link`` headers, and after its sunset the version may answer
410 instead.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from email.utils import format_datetime
from typing import List, Optional, Tuple, Union

from ._errors import APIDefinitionError

__all__ = ["Deprecation"]

DateLike = Union[str, datetime.date, datetime.datetime]


def _moment(value: DateLike, what: str) -> datetime.datetime:
    """``value`` as an aware UTC datetime; a bare date means its midnight."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            raise APIDefinitionError(
                f"Deprecation {what} {value!r} is not an ISO date such as 2026-06-30"
            ) from None
    if not isinstance(value, datetime.datetime):
        value = datetime.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


@dataclass(frozen=True)
class Deprecation:
    """
    A version's deprecation, declared in its package::

        deprecation = urldispatch.Deprecation(
            date="2026-06-01",
            sunset="2027-01-01",
            link="https://example.com/api/deprecations",
            gone_after_sunset=True,
        )

    :param date: when the version is (or will be) deprecated.
    :param sunset: when it stops being served; never before ``date``.
    :param link: a page about the deprecation (``Link: rel="deprecation"``).
    :param sunset_link: a page about the sunset (``Link: rel="sunset"``).
    :param gone_after_sunset: after ``sunset``, answer every call of the
        version with HTTP 410 ``APIVersionGoneError``.
    """

    date: DateLike
    sunset: Optional[DateLike] = None
    link: Optional[str] = None
    sunset_link: Optional[str] = None
    gone_after_sunset: bool = False

    def __post_init__(self) -> None:
        deprecated = _moment(self.date, "date")
        if self.sunset is not None and _moment(self.sunset, "sunset") < deprecated:
            raise APIDefinitionError(
                f"Deprecation sunset {self.sunset} is earlier than its date {self.date}"
            )
        if self.gone_after_sunset and self.sunset is None:
            raise APIDefinitionError(
                "Deprecation gone_after_sunset needs a sunset date"
            )

    @property
    def deprecated_at(self) -> datetime.datetime:
        """The deprecation moment, in UTC."""
        return _moment(self.date, "date")

    @property
    def sunset_at(self) -> Optional[datetime.datetime]:
        """The sunset moment, in UTC, if any."""
        return None if self.sunset is None else _moment(self.sunset, "sunset")

    def headers(self) -> List[Tuple[bytes, List[bytes]]]:
        """The response headers announcing this deprecation."""
        deprecated = calendar.timegm(self.deprecated_at.utctimetuple())
        headers = [(b"deprecation", [b"@%d" % deprecated])]
        sunset = self.sunset_at
        if sunset is not None:
            headers.append(
                (b"sunset", [format_datetime(sunset, usegmt=True).encode("ascii")])
            )
        links = []
        if self.link:
            links.append(f'<{self.link}>; rel="deprecation"; type="text/html"')
        if self.sunset_link:
            links.append(f'<{self.sunset_link}>; rel="sunset"; type="text/html"')
        if links:
            headers.append((b"link", [", ".join(links).encode("utf-8")]))
        return headers

    def is_gone(self, now: datetime.datetime) -> bool:
        """Whether the version answers 410 at ``now`` (an aware datetime)."""
        sunset = self.sunset_at
        return self.gone_after_sunset and sunset is not None and now >= sunset

    def describe(self) -> dict:
        """The deprecation as JSON-ready data, for ``list_versions`` and docs."""
        described: dict = {"deprecated": self.deprecated_at.isoformat()}
        if self.sunset_at is not None:
            described["sunset"] = self.sunset_at.isoformat()
        if self.link:
            described["link"] = self.link
        if self.sunset_link:
            described["sunset_link"] = self.sunset_link
        return described
