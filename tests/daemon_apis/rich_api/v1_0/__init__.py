from shiji import urldispatch

from . import calls

call_router = urldispatch.CallRouter(calls, auto_list_versions=True)
deprecation = urldispatch.Deprecation(
    date="2026-01-01",
    sunset="2030-01-01",
    link="https://example.com/rich_api/deprecations",
)
