"""An API whose tasks and job note each run, for the tests of a shared queue."""

from shiji import urldispatch

from . import v1_0

api_name = "shared_api"
api_contact = {"name": "The Shiji developers"}
api_license = {"name": "MIT License", "identifier": "MIT"}
api_versions = {"1.0": (r"1\.0", v1_0)}
version_router = urldispatch.VersionRouter(api_versions)
