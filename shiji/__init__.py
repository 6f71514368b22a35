"""
Shiji: versioned JSON web APIs on Twisted.

An API is a package with ``api_name``, ``api_versions`` and a
``version_router``; each version has a ``call_router`` over its ``calls.py``.
See :mod:`shiji.urldispatch` for routing, :mod:`shiji.webapi` for argument
validation and errors, and :mod:`shiji.testing` for calling APIs in tests.
"""

__version__ = "0.1.0.dev0"
