"""An API package that cannot be imported."""

api_name = "broken_import_api"
this is not Python
