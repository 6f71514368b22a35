"""
examples/mylogin_api: the spec's PingCall and errors, in Python 3; what
needs no shared store; the nightly job.
"""

import mylogin_api
import pytest
import pytest_twisted
from apitools import envelope, log_lines, without_date

from shiji.metrics import NullMetrics
from shiji.testing import TestClient

PONG = "PONG! Right back at ya."


@pytest.mark.parametrize(
    "mode, mode_string",
    [("prod", "I'm production baby!"), ("test", "I'm in testing mode. :(")],
)
@pytest_twisted.ensureDeferred
async def test_ping_get_echoes_the_timestamp_and_mode(client, mode, mode_string):
    response = await client.get("/myloginapi/ping/123", mode=mode)
    assert response.status == 200
    assert without_date(response.headers) == {
        "server": "Shiji API Server",
        "content-type": "application/json; charset=utf-8",
        "content-length": str(len(response.body)),
    }
    assert response.json == (
        f"{PONG} {mode_string} (Timestamp Val: 123) "
        f"(API: mylogin_api, Version: 1.0, Mode: {mode})"
    )


@pytest_twisted.ensureDeferred
async def test_ping_without_a_timestamp(client):
    await client.expect(
        "GET",
        "/myloginapi/ping",
        None,
        200,
        f"{PONG} I'm production baby! (API: mylogin_api, Version: 1.0, Mode: prod)",
    )


@pytest.mark.parametrize(
    "path", ["/myloginapi/ping/abc", "/myloginapi/ping/1/2", "/myloginapi/pingx"]
)
@pytest_twisted.ensureDeferred
async def test_ping_routes_are_full_matches(client, path):
    response = await client.get(path)
    assert response.status == 404
    assert response.error["exception_class"] == "UnknownAPICallError"


@pytest.mark.parametrize("new_client", [True, False, None])
@pytest_twisted.ensureDeferred
async def test_ping_post_measures_a_local_round_trip(client, new_client):
    body = {"client_tz": -7, "client_id": "myclient012"}
    if new_client is not None:
        body["new_client"] = new_client
    response = await client.post("/myloginapi/ping/123?simple_auth_key=abc", json=body)
    assert response.status == 200
    result = response.json["result"]
    latency = result.pop("latency")
    assert isinstance(latency, float)
    assert 0 <= latency < 30
    assert result == {
        "client_tz": -7,
        "client_id": "myclient012",
        "new_client": bool(new_client),
    }


@pytest.mark.parametrize(
    "query, body, text",
    [
        (
            "?simple_auth_key=abc",
            {
                "client_tz": "notaninteger",
                "client_id": "myclient012",
                "new_client": True,
            },
            "Invalid value for argument 'client_tz'. Must be of type int",
        ),
        (
            "",
            {"client_tz": -7, "client_id": "myclient012", "new_client": True},
            "Invalid value for argument 'simple_auth_key'. Argument is missing.",
        ),
        (
            "?simple_auth_key=abd",
            {"client_tz": -7, "client_id": "myclient012"},
            "Invalid value for argument 'simple_auth_key'. Key isn't valid!",
        ),
        (
            "?simple_auth_key=abc",
            {"client_tz": -7, "client_id": "myclient012", "new_client": "yes"},
            "Invalid value for argument 'new_client'. Must be of type bool",
        ),
        (
            "?simple_auth_key=abc",
            {"client_tz": -7},
            "Invalid value for argument 'client_id'. Argument is missing.",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_ping_post_errors_as_in_the_spec(client, query, body, text):
    response = await client.post(
        f"/myloginapi/ping/123{query}",
        json=body,
        content_type="application/json;charset=utf-8",
    )
    assert response.status == 409
    assert response.json == envelope("ValueError", 502, text)


@pytest_twisted.ensureDeferred
async def test_sample_errors(client):
    response = await client.get("/myloginapi/sample_error/normal")
    assert response.status == 409
    assert response.json == envelope(
        "SampleNormalError",
        100,
        "A sample normal error that doesn't take arguments except for 'request'.",
    )
    response = await client.get("/myloginapi/sample_error/advanced")
    assert response.status == 409
    assert response.json == envelope(
        "SampleAdvancedError",
        101,
        "A sample error that takes arguments in addition to 'request'. "
        "Extra Arg Value: extra argument",
    )


@pytest_twisted.ensureDeferred
async def test_list_versions(client):
    await client.expect(
        "GET",
        "/myloginapi/list_versions",
        None,
        200,
        {"all_versions": ["1.0"], "curr_version": "1.0"},
    )


@pytest_twisted.ensureDeferred
async def test_what_keeps_nothing_in_the_store_answers_without_one():
    client = TestClient({"myloginapi": mylogin_api})
    # Closed, the store fails every operation as an unreachable one does.
    await client.router.store.close()
    response = await client.get("/myloginapi/ping/123")
    assert response.status == 200
    response = await client.post(
        "/myloginapi/ping?simple_auth_key=abc",
        json={"client_tz": 1, "client_id": "c"},
    )
    assert response.status == 200
    response = await client.get("/myloginapi/sample_error/advanced")
    assert response.error["exception_class"] == "SampleAdvancedError"
    response = await client.get("/myloginapi/list_versions")
    assert response.status == 200


class Recorder(NullMetrics):
    """Metrics that remember the counters they are given."""

    def __init__(self):
        self.counted = []

    def increment(self, name, value=1, sample_rate=1.0):
        self.counted.append((name, value))


@pytest.mark.parametrize("configured", [True, False])
@pytest_twisted.ensureDeferred
async def test_the_nightly_job_refreshes_the_database_statistics(tmp_path, configured):
    from mylogin_api import config, passwords

    if passwords.scrypt is None:
        pytest.skip("the example's configuration needs scrypt")
    settings = config.validate_config({"db_path": str(tmp_path / "users.sqlite")})
    metrics = Recorder()
    client = TestClient(
        {"myloginapi": mylogin_api},
        config={"mylogin_api": settings} if configured else {},
        metrics=metrics,
    )
    try:
        with log_lines("mylogin_api.tasks") as lines:
            client.clock.advance(3 * 3600 + 17 * 60 - 1)
            assert await client.run_tasks() == 0
            assert lines == []
            client.clock.advance(1)
            assert await client.run_tasks() == 0
        job = "mylogin_api.cron.optimize_database.ok"
        if configured:
            assert lines == ["Ran PRAGMA optimize on the user database"]
            assert ("mylogin_api.database.optimized", 1) in metrics.counted
        else:
            assert lines == []
            assert ("mylogin_api.database.optimized", 1) not in metrics.counted
        assert (job, 1) in metrics.counted
    finally:
        settings["users"].close()
