"""An API behind filters: the README's examples, for the filters' tests."""

import hmac

from shiji import urldispatch, webapi

from . import v1_0


class APIKeyError(webapi.APIError):
    error_code = 601
    exception_text = "A valid X-API-Key header is required."
    http_status = 401


API_KEYS = [b"k3y-for-tests"]


@webapi.raises(APIKeyError)
def require_api_key(request, call_next):
    """Refuse calls without a known X-API-Key header."""
    key = request.getHeader(b"x-api-key") or b""
    if not any(hmac.compare_digest(key, known) for known in API_KEYS):
        error = APIKeyError(request)
        error.headers["WWW-Authenticate"] = 'APIKey realm="filter_api"'
        raise error
    return call_next(request)


api_name = "filter_api"
api_contact = {"name": "The Shiji developers"}
api_license = {"name": "MIT License", "identifier": "MIT"}
api_versions = {"1.0": (r"1\.0", v1_0)}
version_router = urldispatch.VersionRouter(api_versions)
filters = [require_api_key]
