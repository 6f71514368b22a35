"""
Version 1.0 of benchapi.
"""

from shiji import urldispatch

from . import calls

call_router = urldispatch.CallRouter(calls)
