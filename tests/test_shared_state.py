"""
Two shijid daemons of examples/mylogin_api sharing one store (``[storage]``:
a Redis server, or the default SQLite file) and one users database: a
session made on one is valid on the other, the login and signup limits are
counted across both, and a store that goes away answers 503 (error 218)
until it comes back, while calls that do not use it keep answering.
"""

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from apitools import envelope
from daemons import ROOT, Daemon, write_config
from mylogin_api import passwords

# Every case starts two daemons: seconds each.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(passwords.scrypt is None, reason="no scrypt on this Python"),
]

VERSION = {"X-API-Version": "mylogin_api-1.0+prod"}
SECRET = "shared state tests: a secret of thirty-two characters or more"
ADA = {"email": "ada@example.com", "password": "correct horse"}
ACCOUNT = {"result": {"id": 1, "email": "ada@example.com"}}
LOGIN_ATTEMPTS = 3
SIGNUP_ATTEMPTS = 2
#: The limits count over windows aligned to the epoch: long ones, so that no
#: window ends in the middle of a test.
LOGIN_WINDOW = SIGNUP_WINDOW = 1_000_000
#: How long a request may take while the store is unreachable: the Redis
#: store's timeouts to connect (1 s) and for a reply (2 s), and a margin for
#: a busy machine.
STORE_TIMEOUT = 3.0
MARGIN = 5.0
#: Seconds a session lives unused: ``[sessions] max_age``'s default.
SESSION_MAX_AGE = 14 * 86400


PONG = (
    "PONG! Right back at ya. I'm production baby! "
    "(API: mylogin_api, Version: 1.0, Mode: prod)"
)
UNAUTHENTICATED = envelope(
    "InvalidAuthenticationError",
    506,
    "Authentication information is invalidly formed and/or missing required elements.",
)
LOGIN_FAILED = envelope("LoginFailedError", 111, "The email or the password is wrong.")
STORE_DOWN = envelope(
    "StorageUnavailableError",
    218,
    "The shared store cannot be reached; try again shortly.",
)


class Pair:
    """Two shijid daemons, A and B, whose configurations differ only in
    their log files."""

    def __init__(self, tmp_path, store_url):
        self.daemons = []
        for name in ("a", "b"):
            config = write_config(
                tmp_path / f"{name}.conf",
                {
                    "general": {
                        "listen_ip": "127.0.0.1",
                        "listen_port": "0",
                        "base_path": str(ROOT / "examples"),
                    },
                    "logging": {"log_file": str(tmp_path / f"{name}.log")},
                    "auth": {
                        "secure_cookies_secrets": json.dumps([SECRET]),
                        "enable_auth": "true",
                        "auth_module": "mylogin_api.backend",
                        "auth_class": "SessionBackend",
                    },
                    "storage": {"url": store_url},
                    "apis": {"mylogin_api": "myloginapi"},
                    "config_mylogin_api": {
                        "db_path": str(tmp_path / "users.sqlite"),
                        "login_attempts": str(LOGIN_ATTEMPTS),
                        "login_window": str(LOGIN_WINDOW),
                        "signup_attempts": str(SIGNUP_ATTEMPTS),
                        "signup_window": str(SIGNUP_WINDOW),
                    },
                },
            )
            home = tmp_path / name
            home.mkdir()
            self.daemons.append(Daemon(home, config=config))

    def __enter__(self):
        # Started side by side: each takes a second or two.
        try:
            with ThreadPoolExecutor(len(self.daemons)) as pool:
                for started in [pool.submit(d.start) for d in self.daemons]:
                    started.result()
        except BaseException:
            self.kill()
            raise
        return self.daemons

    def __exit__(self, *exc_info):
        self.kill()

    def kill(self):
        for daemon in self.daemons:
            daemon.kill()


@pytest.fixture
def on_redis(tmp_path, fresh_redis):
    with Pair(tmp_path, fresh_redis.url) as daemons:
        yield daemons


@pytest.fixture
def on_sqlite(tmp_path):
    # Relative to the configuration files, which sit side by side: one file.
    with Pair(tmp_path, "sqlite:shared.sqlite") as daemons:
        yield daemons
    assert (tmp_path / "shared.sqlite").exists()


def call(daemon, method, path, body=None, cookie=None, timeout=10):
    """``(status, headers, JSON body)`` of one call to the example."""
    headers = dict(VERSION)
    if cookie is not None:
        headers["Cookie"] = cookie
    status, answer_headers, raw = daemon.request(
        method, f"/myloginapi/{path}", body=body, headers=headers, timeout=timeout
    )
    return status, answer_headers, json.loads(raw)


def signup(daemon, credentials=ADA):
    return call(daemon, "POST", "users", credentials)


def login(daemon, password=ADA["password"]):
    return call(daemon, "POST", "login", {"email": ADA["email"], "password": password})


def login_cookie(daemon):
    """Log Ada in on ``daemon``; the ``name=value`` of her session cookie."""
    status, headers, body = login(daemon)
    assert (status, body) == (200, ACCOUNT)
    return headers["Set-Cookie"].split(";")[0]


def too_many(answer, window):
    """A 429 answer telling to retry when the current window ends."""
    status, headers, body = answer
    assert status == 429
    wait = int(headers["Retry-After"])
    assert wait == window - int(time.time()) % window or (
        wait == window - int(time.time() - 1) % window
    ), wait
    assert body == envelope(
        "TooManyAttemptsError", 112, f"Too many attempts; try again in {wait} seconds."
    )


def live_sessions(daemon, cookie):
    """The expiries ``me/sessions`` lists, checked to lie ``SESSION_MAX_AGE``
    from about now."""
    status, _, body = call(daemon, "GET", "me/sessions", cookie=cookie)
    assert status == 200, body
    result = body["result"]
    assert (result["page"], result["page_len"]) == (0, 20)
    now = time.time()
    for expires in result["expires"]:
        assert now + SESSION_MAX_AGE - 60 < expires <= now + SESSION_MAX_AGE
    return result["expires"]


def session_made_on_one_is_valid_on_the_other(a, b):
    status, _, body = signup(a)
    assert (status, body) == (201, ACCOUNT)
    cookie = login_cookie(a)
    assert call(b, "GET", "me", cookie=cookie)[::2] == (200, ACCOUNT)
    assert call(a, "GET", "me", cookie=cookie)[::2] == (200, ACCOUNT)
    # A second login, on B: both sessions are listed by either daemon.
    other = login_cookie(b)
    assert other != cookie
    assert len(live_sessions(a, other)) == len(live_sessions(b, cookie)) == 2
    status, headers, body = call(b, "POST", "logout", cookie=cookie)
    assert (status, body) == (200, {"result": "logged out"})
    # The cookie is cleared.
    cleared = headers["Set-Cookie"]
    assert cleared.startswith("session=")
    assert cleared.endswith("; Path=/; Max-Age=0; HttpOnly; SameSite=lax")
    for daemon in (a, b):
        status, headers, body = call(daemon, "GET", "me", cookie=cookie)
        assert (status, body) == (401, UNAUTHENTICATED)
        assert headers["WWW-Authenticate"] == (
            'Cookie realm="mylogin_api", cookie-name="session"'
        )
    # The other session lives on, alone.
    assert call(a, "GET", "me", cookie=other)[::2] == (200, ACCOUNT)
    assert len(live_sessions(b, other)) == 1


def test_a_session_made_on_one_daemon_is_valid_on_the_other_redis(on_redis):
    session_made_on_one_is_valid_on_the_other(*on_redis)


def test_a_session_made_on_one_daemon_is_valid_on_the_other_sqlite(on_sqlite):
    session_made_on_one_is_valid_on_the_other(*on_sqlite)


def test_failed_logins_are_counted_across_daemons(on_redis):
    a, b = on_redis
    assert signup(a)[0] == 201
    for attempt in range(LOGIN_ATTEMPTS):
        daemon = (a, b)[attempt % 2]
        assert login(daemon, "wrong horse")[::2] == (401, LOGIN_FAILED)
    # The limit is reached after that many attempts in all: both refuse,
    # the right password too.
    for daemon in (b, a):
        too_many(login(daemon, "wrong horse"), LOGIN_WINDOW)
        too_many(login(daemon), LOGIN_WINDOW)


def test_signups_are_counted_across_daemons(on_redis):
    a, b = on_redis
    for n, daemon in enumerate((a, b)):
        email = f"user{n}@example.com"
        status, _, body = signup(daemon, {"email": email, "password": "long enough"})
        assert (status, body) == (201, {"result": {"id": n + 1, "email": email}})
    for daemon in (a, b):
        too_many(
            signup(daemon, {"email": "late@example.com", "password": "long enough"}),
            SIGNUP_WINDOW,
        )


class Load:
    """
    Clients calling ``me`` (with a cookie) and ``ping`` on daemons in a
    loop, each on its own keep-alive connection, recording every answer:
    ``(started, daemon index, path, status, headers, body, seconds)``.
    """

    def __init__(self, daemons, cookie, clients_per_daemon=2):
        self.cookie = cookie
        self.answers = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self.loop, args=(index, daemon), daemon=True)
            for index, daemon in enumerate(daemons)
            for _ in range(clients_per_daemon)
        ]

    def loop(self, index, daemon):
        connection = None
        requests = [
            ("/myloginapi/me", {**VERSION, "Cookie": self.cookie}),
            ("/myloginapi/ping", VERSION),
        ]
        while not self.stopping.is_set():
            for path, headers in requests:
                if connection is None:
                    timeout = STORE_TIMEOUT + MARGIN
                    connection = http.client.HTTPConnection(
                        "127.0.0.1", daemon.port, timeout=timeout
                    )
                started = time.monotonic()
                try:
                    connection.request("GET", path, headers=headers)
                    response = connection.getresponse()
                    raw = response.read()
                    answer = (
                        response.status,
                        dict(response.getheaders()),
                        json.loads(raw),
                    )
                except (OSError, http.client.HTTPException, ValueError) as error:
                    connection.close()
                    connection = None
                    answer = (repr(error), {}, None)
                elapsed = time.monotonic() - started
                with self.lock:
                    self.answers.append((started, index, path, *answer, elapsed))
        if connection is not None:
            connection.close()

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        for thread in self.threads:
            thread.join(STORE_TIMEOUT + MARGIN + 5)
        assert not any(thread.is_alive() for thread in self.threads)

    def since(self, moment):
        with self.lock:
            return [answer for answer in self.answers if answer[0] >= moment]

    def wait_for(self, moment, test, count, timeout):
        """
        Wait until ``count`` answers started after ``moment`` from each
        daemon pass ``test``; the moment the first of them started.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            firsts = []
            for index in range(2):
                passing = [a for a in self.since(moment) if a[1] == index and test(a)]
                if len(passing) >= count:
                    firsts.append(passing[0][0])
            if len(firsts) == 2:
                return max(firsts)
            time.sleep(0.05)
        raise AssertionError(
            f"no answers passing within {timeout} s: {self.since(moment)[-6:]}"
        )


def me_answers(status):
    return lambda answer: answer[2] == "/myloginapi/me" and answer[3] == status


def test_the_store_going_away_and_coming_back_under_load(on_redis, fresh_redis):
    a, b = on_redis
    assert signup(a)[0] == 201
    cookie = login_cookie(a)
    with Load([a, b], cookie) as load:
        started = time.monotonic()
        load.wait_for(started, me_answers(200), 5, 10)
        stopped = time.monotonic()
        fresh_redis.stop()
        try:
            first_503 = load.wait_for(
                stopped, me_answers(503), 3, STORE_TIMEOUT + MARGIN
            )
            # The store stays away a while under load.
            time.sleep(2)
            assert load.wait_for(first_503, me_answers(503), 10, 10)
        finally:
            restarting = time.monotonic()
            fresh_redis.start()
        restarted = time.monotonic()
        # The store reconnects on its own, and the session survived.
        back = load.wait_for(restarted, me_answers(200), 5, STORE_TIMEOUT + MARGIN)
        time.sleep(0.5)
    answers = load.answers
    ended = [a for a in answers if a[0] >= back]
    assert ended, "no answers after the store came back"

    def shown(answer):
        return answer[:4] + answer[6:]

    for answer in answers:
        _, _, path, status, headers, body, seconds = answer
        assert seconds < STORE_TIMEOUT + MARGIN, shown(answer)
        if path == "/myloginapi/ping":
            assert status == 200, shown(answer)
            assert body == PONG
        elif status == 200:
            assert body == ACCOUNT, shown(answer)
        else:
            assert status == 503, shown(answer)
            assert headers["Retry-After"] == "1"
            assert headers["Content-Type"] == "application/json; charset=utf-8"
            assert body == STORE_DOWN
    # Between the store's stop and its start, every daemon answered 503;
    # once it answered again, 200: no answer of the store's absence lingers.
    outage = [
        a
        for a in answers
        if a[2] == "/myloginapi/me" and first_503 <= a[0] and a[0] + a[6] < restarting
    ]
    assert {a[3] for a in outage} == {503}, [shown(a) for a in outage if a[3] != 503]
    assert {a[1] for a in outage} == {0, 1}
    pings = [
        a
        for a in answers
        if a[2] == "/myloginapi/ping" and stopped <= a[0] < restarting
    ]
    assert {(a[1], a[3]) for a in pings} == {(0, 200), (1, 200)}
    after = [a for a in answers if a[0] >= back and a[2] == "/myloginapi/me"]
    assert {a[3] for a in after} == {200}
    assert {a[1] for a in after} == {0, 1}
    # The same cookie, on both, after the load.
    for daemon in (a, b):
        assert call(daemon, "GET", "me", cookie=cookie)[::2] == (200, ACCOUNT)


def test_a_login_without_the_store_sets_no_cookie(on_redis, fresh_redis):
    a, b = on_redis
    assert signup(a)[0] == 201
    cookie = login_cookie(a)
    fresh_redis.stop()
    try:
        for daemon in (a, b):
            started = time.monotonic()
            status, headers, body = login(daemon)
            assert time.monotonic() - started < STORE_TIMEOUT + MARGIN
            assert (status, body) == (503, STORE_DOWN)
            assert headers["Retry-After"] == "1"
            assert "Set-Cookie" not in headers
            status, headers, body = call(daemon, "POST", "logout", cookie=cookie)
            assert (status, body) == (503, STORE_DOWN)
            assert "Set-Cookie" not in headers
    finally:
        fresh_redis.start()
    # Nothing was half-done: the session lives on, on both.
    deadline = time.monotonic() + STORE_TIMEOUT + MARGIN
    for daemon in (a, b):
        while True:
            status, _, body = call(daemon, "GET", "me", cookie=cookie)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert (status, body) == (200, ACCOUNT)
