from shiji import urldispatch, webapi


class ItemsError(webapi.APIError):
    """No such item."""

    error_code = 300
    exception_text = "Item %s does not exist."
    http_status = 404


def check(username, password):
    return username == "admin" and password == "secret"


class Items(urldispatch.URLMatchJSONResource):
    """Items of the catalogue."""

    routes = r"items"

    @webapi.paged_results(default_page=0, default_page_len=20, max_page_len=100)
    def render_GET(self, request):
        """
        List items.

        :returns: a page of items.
        """
        return {"page": request.args["page"][0]}

    @webapi.auth_http_basic(check, "catalogue")
    @webapi.json_arguments(
        [
            ("name", str),
            ("price", float),
            ("tags", list, webapi.ARG_OPTIONAL),
            ("stock", (int, type(None)), webapi.ARG_OPTIONAL),
            ("extra", dict, webapi.ARG_OPTIONAL),
            ("active", bool, webapi.ARG_OPTIONAL),
        ]
    )
    def render_POST(self, request):
        """Add an item."""
        return request.jsonArgs


class Item(urldispatch.URLMatchJSONResource):
    routes = r"items/(?P<item_id>[0-9]+)"

    @webapi.json_arguments([("name", str)], content_type="application/merge-patch+json")
    def render_PATCH(self, request):
        """Rename an item."""
        return {"id": self.url_matches["item_id"]}

    def render_DELETE(self, request):
        raise ItemsError(request, self.url_matches["item_id"])


class Search(urldispatch.URLMatchJSONResource):
    """Search, with a route that is a pattern rather than a path."""

    routes = r"search(es)?/(?P<term>[^/]+)"

    @webapi.url_arguments(["q"])
    def render_GET(self, request):
        return []
