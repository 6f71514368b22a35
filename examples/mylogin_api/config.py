"""
Configuration of mylogin_api, shared by all its versions: the
``[config_mylogin_api]`` section of shijid's configuration.

Options (all optional):

- ``db_driver``: ``sqlite3`` (the default) or ``psycopg2`` (PostgreSQL);
- ``db_path``: the SQLite file (default ``mylogin_api.sqlite``), or
  ``db_dsn`` for PostgreSQL;
- ``session_days``: how long a login lasts (default 7);
- ``cookie_name``: the session cookie's name (default ``session``);
- ``login_attempts`` and ``login_window``: failed logins allowed per email
  and per client address within that many seconds (default 5 per 900).
"""

from .limits import RateLimiter
from .passwords import scrypt
from .store import UserStore

DEFAULTS = {
    "db_driver": "sqlite3",
    "db_path": "mylogin_api.sqlite",
    "session_days": "7",
    "cookie_name": "session",
    "login_attempts": "5",
    "login_window": "900",
}


def _positive(config, name, kind):
    try:
        value = kind(config[name])
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{name} must be a positive number, not {config[name]!r}")
    return value


def validate_config(config_dict):
    """
    Check the options and open the user store (creating its tables on first
    start). Handlers find the result as ``request.api_config["mylogin_api"]``.
    """
    config = dict(DEFAULTS, **config_dict)
    unknown = set(config) - set(DEFAULTS) - {"db_dsn"}
    if unknown:
        raise ValueError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if scrypt is None:
        raise ValueError(
            "passwords need scrypt: this Python's hashlib has none; install cryptography"
        )
    driver = config["db_driver"]
    if driver == "sqlite3":
        connect = config["db_path"]
    elif driver == "psycopg2":
        if "db_dsn" not in config:
            raise ValueError("db_driver psycopg2 needs db_dsn")
        connect = config["db_dsn"]
    else:
        raise ValueError(f"db_driver must be sqlite3 or psycopg2, not {driver!r}")
    return {
        "users": UserStore(driver, connect),
        "session_days": _positive(config, "session_days", float),
        "cookie_name": config["cookie_name"],
        "limiter": RateLimiter(
            _positive(config, "login_attempts", int),
            _positive(config, "login_window", float),
        ),
    }
