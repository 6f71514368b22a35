import csv
import io

from shiji.urldispatch import URLMatchJSONResource


def csv_if_accepted(request, call_next):
    """Answer with CSV when the client's Accept asks for text/csv."""
    wants_csv = "text/csv" in (request.getHeader("Accept") or "")

    def encode(rows):
        request.add_header("Vary", "Accept")
        if not wants_csv:
            return rows
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)
        request.setHeader("Content-Type", "text/csv; charset=utf-8")
        return out.getvalue()

    return call_next(request).addCallback(encode)


class Users(URLMatchJSONResource):
    """The users, as JSON or CSV."""

    routes = r"users/?"
    filters = [csv_if_accepted]

    def render_GET(self, request):
        """Every user and their role."""
        return [{"name": "ada", "role": "admin"}, {"name": "bob", "role": "user"}]

    def render_POST(self, request):
        """Add a user (here, only pretend to)."""
        request.setResponseCode(201)
        return {"added": True}
