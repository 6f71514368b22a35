"""
benchapi: the API the benchmarks serve, the same logic in every server of
``bench/apps``.
"""

from shiji import urldispatch

from . import v1_0

api_name = "benchapi"
api_versions = {
    "1.0": (r"1\.0", v1_0),
}
version_router = urldispatch.VersionRouter(api_versions)
