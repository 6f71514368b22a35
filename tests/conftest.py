import mylogin_api
import pytest

from shiji.testing import TestClient


@pytest.fixture
def client():
    """A client of the example API, mounted at /myloginapi."""
    return TestClient({"myloginapi": mylogin_api})
