from shiji import urldispatch

from . import calls

call_router = urldispatch.CallRouter(calls)
