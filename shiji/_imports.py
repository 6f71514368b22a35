"""
One way to say why a module could not be imported.
"""

from __future__ import annotations

__all__ = ["import_failure"]


def import_failure(module: str, exc: BaseException) -> str:
    """
    ``cannot import <module>: <Error>: <message> (<file>, line <n>)``, naming
    the innermost frame outside the import machinery.
    """
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        frame_file = tb.tb_frame.f_code.co_filename
        if "importlib" not in frame_file:
            where = f" ({frame_file}, line {tb.tb_lineno})"
        tb = tb.tb_next
    text = str(exc)
    if isinstance(exc, SyntaxError):
        text = exc.msg
        where = f" ({exc.filename}, line {exc.lineno})"
    return f"cannot import {module}: {type(exc).__name__}: {text}{where}"
