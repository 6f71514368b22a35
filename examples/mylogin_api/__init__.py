"""
mylogin_api: the example API of the Shiji documentation.

api_name, api_versions and version_router are what APIRouter requires of an
API package.
"""

from shiji import urldispatch

from . import v1_0

api_name = "mylogin_api"
#: Who answers for the API and under which license, for its documentation.
api_contact = {"name": "The Shiji developers"}
api_license = {"name": "MIT License", "identifier": "MIT"}
api_versions = {
    "1.0": (r"1\.0", v1_0),
}
version_router = urldispatch.VersionRouter(api_versions)
