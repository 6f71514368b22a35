"""An API whose calls block the reactor, for the watchdog's tests."""

from shiji import urldispatch

from . import v1_0

api_name = "stuck_api"
api_contact = {"name": "The Shiji developers"}
api_license = {"name": "MIT License", "identifier": "MIT"}
api_versions = {"1.0": (r"1\.0", v1_0)}
version_router = urldispatch.VersionRouter(api_versions)
