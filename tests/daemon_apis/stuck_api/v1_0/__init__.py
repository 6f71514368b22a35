from shiji import urldispatch

from . import calls

call_router = urldispatch.CallRouter(calls, auto_list_versions=True)
