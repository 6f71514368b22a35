"""
One way to say why a module could not be imported.
"""

from __future__ import annotations

import os

__all__ = ["import_failure"]


def import_failure(module: str, exc: BaseException) -> str:
    """
    ``cannot import <module>: <Error>: <message> (<file>, line <n>)``, naming
    the innermost frame outside the import machinery and outside Shiji (the
    line of the API that called Shiji wrongly), or else outside the import
    machinery.
    """
    where = theirs = ""
    tb = exc.__traceback__
    while tb is not None:
        frame_file = tb.tb_frame.f_code.co_filename
        if "importlib" not in frame_file:
            where = f" ({frame_file}, line {tb.tb_lineno})"
            if not frame_file.startswith(_SHIJI):
                theirs = where
        tb = tb.tb_next
    where = theirs or where
    text = str(exc)
    if isinstance(exc, SyntaxError):
        text = exc.msg
        where = f" ({exc.filename}, line {exc.lineno})"
    return f"cannot import {module}: {type(exc).__name__}: {text}{where}"


_SHIJI = os.path.dirname(os.path.abspath(__file__)) + os.sep
