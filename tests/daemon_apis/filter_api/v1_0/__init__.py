from shiji import urldispatch

from . import calls


async def cache_for_a_minute(request, call_next):
    """Let clients keep a successful GET's answer for a minute."""
    result = await call_next(request)
    if request.method in (b"GET", b"HEAD"):
        request.setHeader("Cache-Control", "max-age=60")
    return result


call_router = urldispatch.CallRouter(calls, filters=[cache_for_a_minute])
