"""An API package with a syntax error."""

api_name = "broken_syntax_api"
def broken(:
    pass
