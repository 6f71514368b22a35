"""
Shiji: versioned JSON web APIs on Twisted.

An API is a package with ``api_name``, ``api_versions`` and a
``version_router``; each version has a ``call_router`` over its ``calls.py``.
See :mod:`shiji.urldispatch` for routing, :mod:`shiji.webapi` for argument
validation and errors, and :mod:`shiji.testing` for calling APIs in tests.
"""

from ._server_ident import change_server_ident, server_ident

__all__ = ["__version__", "change_server_ident", "server_ident"]

__version__ = "0.1.0.dev0"
