"""
Configuration of mylogin_api, shared by all its versions: the
``[config_mylogin_api]`` section of shijid's configuration.

Options (all optional):

- ``db_driver``: ``sqlite3`` (the default) or ``psycopg2`` (PostgreSQL);
- ``db_path``: the SQLite file (default ``mylogin_api.sqlite``), or
  ``db_dsn`` for PostgreSQL;
- ``login_attempts`` and ``login_window``: failed logins allowed per
  account and client address within each window of that many seconds
  (default 5 per 900);
- ``address_login_attempts``: failed logins allowed per client address,
  whatever the account, within ``login_window`` (default 20);
- ``account_login_ceiling``: failed logins per account from all addresses
  within ``login_window`` past which every login to it waits
  ``login_slowdown`` seconds first (default 50, and 2 seconds);
- ``signup_attempts`` and ``signup_window``: signups allowed per client
  address within that many seconds (default 10 per 3600).

Limits are counted in shijid's shared store (``[storage]``), over fixed
windows (see :mod:`mylogin_api.limits`), and key on ``request.client_ip``:
behind a reverse proxy, set shijid's ``honor_x_realip`` and
``trusted_proxies`` so that each client is counted on its own.

Sessions are shijid's (:mod:`shiji.sessions`): how long a login lasts
unused is ``[sessions] max_age``, the cookie's name ``[sessions]
cookie_name`` (``session``; with ``[auth] cookie_secure``, the cookie is
``__Host-session``, which browsers keep only from HTTPS sites and never let
a subdomain set).
"""

import math

from .limits import AccessLimits
from .passwords import scrypt
from .store import UserStore

DEFAULTS = {
    "db_driver": "sqlite3",
    "db_path": "mylogin_api.sqlite",
    "login_attempts": "5",
    "login_window": "900",
    "address_login_attempts": "20",
    "account_login_ceiling": "50",
    "login_slowdown": "2",
    "signup_attempts": "10",
    "signup_window": "3600",
}


#: Options of earlier versions of the example, and where they went.
MOVED = {
    "session_days": "[sessions] max_age, in seconds",
    "cookie_name": "[sessions] cookie_name",
}


def _positive(config, name, kind):
    try:
        value = kind(config[name])
    except ValueError:
        value = 0
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number, not {config[name]!r}")
    return value


def validate_config(config_dict):
    """
    Check the options and open the user store (creating its tables on first
    start). Handlers find the result as ``request.api_config["mylogin_api"]``.
    """
    moved = sorted(set(config_dict) & set(MOVED))
    if moved:
        raise ValueError(f"{moved[0]} moved to {MOVED[moved[0]]}")
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
        "limits": AccessLimits(
            login_attempts=_positive(config, "login_attempts", int),
            login_window=_positive(config, "login_window", float),
            address_login_attempts=_positive(config, "address_login_attempts", int),
            account_login_ceiling=_positive(config, "account_login_ceiling", int),
            login_slowdown=_positive(config, "login_slowdown", float),
            signup_attempts=_positive(config, "signup_attempts", int),
            signup_window=_positive(config, "signup_window", float),
        ),
    }
