"""
An API that declares a bit of everything, for the documentation tests.

Its docstrings are reStructuredText.
"""

from shiji import urldispatch

from . import v1_0, v2_0

api_name = "rich_api"
api_contact = {"name": "The Shiji developers"}
api_license = {"name": "MIT License", "identifier": "MIT"}
docstring_format = "restructuredtext"
api_versions = {
    "1.0": (r"1\.0", v1_0),
    "2.0": (r"2\.0", v2_0),
}
version_router = urldispatch.VersionRouter(api_versions)
