"""
shiji_admin: scaffold API packages and versions, write configuration stubs,
and generate documentation (JSON, HTML, Markdown) from an API's code and
docstrings.
"""
