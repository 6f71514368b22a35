"""An API package missing what routing needs."""

api_name = "no_routes_api"
