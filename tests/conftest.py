import mylogin_api
import pytest
from postgres_server import fresh_postgres, postgres_server  # noqa: F401 (fixtures)
from redis_server import fresh_redis, redis_server  # noqa: F401 (fixtures)

from shiji.testing import TestClient


def pytest_addoption(parser):
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        help="fuzz each API version with thousands of cases and a fresh seed",
    )


@pytest.fixture
def client():
    """A client of the example API, mounted at /myloginapi."""
    return TestClient({"myloginapi": mylogin_api})


@pytest.fixture
def shijid(tmp_path):
    """Start shijid daemons (see tests/daemons.py); all are killed afterwards."""
    from daemons import Daemon

    started = []

    def start(overrides=(), **options):
        home = tmp_path / f"daemon{len(started)}"
        home.mkdir()
        daemon = Daemon(home, overrides, **options)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.kill()
