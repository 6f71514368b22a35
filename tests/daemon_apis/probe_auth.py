"""Auth backends for the daemon's configuration tests."""


class HeaderBackend:
    """Grants ``grants`` to requests carrying ``header: token``."""

    def __init__(self, header, token, grants):
        self.header = header.encode()
        self.token = token.encode()
        self.grants = grants

    def authenticate(self, request):
        return self.grants if request.getHeader(self.header) == self.token else None


class Exploding:
    def __init__(self, **kwargs):
        raise ValueError("no database at /nonexistent")


class NoAuthenticate:
    pass
