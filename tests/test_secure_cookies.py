"""
Secure cookies: signing, verification, rotation, expiry, attributes.
"""

import re
import time

import pytest
import pytest_twisted
from apitools import envelope, make_api
from twisted.logger import globalLogPublisher

from shiji import auth, webapi
from shiji.auth import CookieSigner
from shiji.testing import TestClient
from shiji.urldispatch import URLMatchJSONResource

OLD = "the old secret, at least thirty-two characters"
NEW = "the new secret, at least thirty-two characters"


class Cookies(URLMatchJSONResource):
    routes = r"cookie/(?P<name>[A-Za-z_-]+)"

    def render_PUT(self, request):
        name = self.url_matches["name"]
        options = {}
        if "days" in request.args:
            options["expires_days"] = float(request.args["days"][0])
        if "path" in request.args:
            options["path"] = request.args["path"][0]
        if "domain" in request.args:
            options["domain"] = request.args["domain"][0]
        auth.set_secure_cookie(request, name, request.args["value"][0], **options)
        return {"set": name}

    def render_GET(self, request):
        value = auth.get_secure_cookie(request, self.url_matches["name"])
        if isinstance(value, webapi.APIError):
            # A returned error, like one made by hand, keeps its request.
            assert value.request is request
            return str(value)
        return {"value": value}


def client(secrets=(NEW,), **options):
    api = make_api("c_api", [("1.0", r"1\.0", [Cookies])])
    return TestClient({"c": api}, cookie_secrets=list(secrets), **options)


def cookie_of(response, name):
    [header] = [
        h for h in response.header_values("set-cookie") if h.startswith(name + "=")
    ]
    return header.split(";")[0].split("=", 1)[1], header


@pytest_twisted.ensureDeferred
async def test_round_trip_and_attributes():
    test_client = client()
    response = await test_client.put("/c/cookie/session?value=alice%20%E2%9C%93")
    assert response.json == {"set": "session"}
    value, header = cookie_of(response, "session")
    expires = int(value.split(".")[1])
    assert abs(expires - (time.time() + 30 * 86400)) < 10
    assert header == (
        f"session={value}; Expires={time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(expires))}; "
        "Path=/; Max-Age=2592000; HttpOnly; SameSite=lax"
    )
    response = await test_client.get(
        "/c/cookie/session", headers={"Cookie": f"session={value}"}
    )
    assert response.json == {"value": "alice ✓"}


@pytest_twisted.ensureDeferred
async def test_absent_cookie_is_none():
    assert (await client().get("/c/cookie/session")).json == {"value": None}


@pytest_twisted.ensureDeferred
async def test_secure_by_configuration_and_by_prefix():
    response = await client(cookie_secure=True).put("/c/cookie/plain?value=v&days=1")
    assert cookie_of(response, "plain")[1].endswith(
        "; Max-Age=86400; Secure; HttpOnly; SameSite=lax"
    )
    response = await client().put("/c/cookie/__Host-session?value=v")
    header = cookie_of(response, "__Host-session")[1]
    assert "; Path=/;" in header and "; Secure;" in header and "Domain" not in header
    response = await client().put("/c/cookie/__Secure-id?value=v&path=/api")
    assert (
        "; Path=/api; Max-Age=2592000; Secure;" in cookie_of(response, "__Secure-id")[1]
    )
    response = await client().put("/c/cookie/__Host-session?value=v&domain=example.com")
    assert response.status == 500  # a programming error, refused


@pytest_twisted.ensureDeferred
async def test_every_tampered_byte_is_refused():
    test_client = client()
    response = await test_client.put("/c/cookie/session?value=alice")
    value, _ = cookie_of(response, "session")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for index, char in enumerate(value):
        replacement = alphabet[(alphabet.index(char) + 1) % len(alphabet)]
        tampered = value[:index] + replacement + value[index + 1 :]
        response = await test_client.get(
            "/c/cookie/session", headers={"Cookie": f"session={tampered}"}
        )
        assert response.status == 409, (index, tampered)
        assert response.error["exception_class"] == "InvalidSecureCookieError", (
            index,
            tampered,
        )
    for broken in ("", "x", "a.b", "a.b.c.d", value + "=", value.replace(".", "..", 1)):
        response = await test_client.get(
            "/c/cookie/session", headers={"Cookie": f"session={broken}"}
        )
        assert response.error["exception_class"] == "InvalidSecureCookieError", broken


@pytest_twisted.ensureDeferred
async def test_the_invalid_cookie_error_exactly():
    response = await client().get(
        "/c/cookie/session", headers={"Cookie": "session=YWxpY2U.99999999999.Zm9v"}
    )
    assert response.status == 409
    assert response.json == envelope(
        "InvalidSecureCookieError",
        507,
        "Secure cookie 'session' signature 'Zm9v' is invalid.",
    )


@pytest_twisted.ensureDeferred
async def test_a_signature_is_bound_to_its_cookies_name():
    test_client = client()
    value, _ = cookie_of(await test_client.put("/c/cookie/admin?value=yes"), "admin")
    response = await test_client.get(
        "/c/cookie/user", headers={"Cookie": f"user={value}"}
    )
    assert response.error["exception_class"] == "InvalidSecureCookieError"


def test_expired_cookies():
    signer = CookieSigner([NEW])
    cookie = signer.sign("session", "alice", expires=1000)
    assert signer.verify("session", cookie, now=999.0) == "alice"
    with pytest.raises(webapi.ExpiredSecureCookieError) as info:
        signer.verify("session", cookie, now=1000.0)
    assert info.value.exception_text == "Secure cookie 'session' is expired."
    forged = cookie.replace(".1000.", ".9999999999.")
    with pytest.raises(webapi.InvalidSecureCookieError):
        signer.verify("session", forged, now=1000.0)
    # Other spellings of the same number are not the same cookie.
    for spelling in (".01000.", ".\u0661000.", ".1\u0660\u0660\u0660."):
        with pytest.raises(webapi.InvalidSecureCookieError):
            signer.verify("session", cookie.replace(".1000.", spelling), now=999.0)


@pytest_twisted.ensureDeferred
async def test_an_expired_cookie_answers_508():
    value, _ = cookie_of(
        await client().put("/c/cookie/session?value=v&days=-1"), "session"
    )
    response = await client().get(
        "/c/cookie/session", headers={"Cookie": f"session={value}"}
    )
    assert response.json == envelope(
        "ExpiredSecureCookieError", 508, "Secure cookie 'session' is expired."
    )


@pytest_twisted.ensureDeferred
async def test_rotation_old_secrets_verify_and_the_first_signs():
    old_cookie, _ = cookie_of(await client([OLD]).put("/c/cookie/s?value=v"), "s")
    rotated = client([NEW, OLD])
    response = await rotated.get("/c/cookie/s", headers={"Cookie": f"s={old_cookie}"})
    assert response.json == {"value": "v"}
    new_cookie, _ = cookie_of(await rotated.put("/c/cookie/s?value=w"), "s")
    assert (
        await client([NEW]).get("/c/cookie/s", headers={"Cookie": f"s={new_cookie}"})
    ).json == {"value": "w"}
    response = await client([OLD]).get(
        "/c/cookie/s", headers={"Cookie": f"s={new_cookie}"}
    )
    assert response.error["exception_class"] == "InvalidSecureCookieError"
    response = await client([NEW]).get(
        "/c/cookie/s", headers={"Cookie": f"s={old_cookie}"}
    )
    assert response.error["exception_class"] == "InvalidSecureCookieError"


@pytest.mark.parametrize(
    "secrets, message",
    [
        ([], "list at least one secret"),
        ("a single string is not a list of secrets", "list at least one secret"),
        ([""], "secret 1 is shorter than 32 characters"),
        ([NEW, "short"], "secret 2 is shorter than 32 characters"),
    ],
)
def test_bad_secrets_are_refused(secrets, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        CookieSigner(secrets)


@pytest_twisted.ensureDeferred
async def test_without_secrets_secure_cookies_are_a_server_error():
    api = make_api("c_api", [("1.0", r"1\.0", [Cookies])])
    response = await TestClient({"c": api}).put("/c/cookie/s?value=v")
    assert response.status == 500


def test_the_signature_format_is_fixed():
    # Changing how the MAC is computed would log every user out: these
    # values were signed by an earlier release and must keep verifying.
    # HMAC-SHA256 over the JSON array ["shiji-cookie-v1", name, value,
    # expires] (ASCII, compact), value and MAC in unpadded URL-safe base64.
    signer = CookieSigner(["a fixed secret for the test vector, 42"])
    vector = "YWxpY2Ug4pyT.2000000000.eb6LhnqkbOYgN25IO0g_0CZhv4TOCgMtq77KdqXQjD8"
    assert signer.sign("session", "alice ✓", 2000000000) == vector
    assert signer.verify("session", vector, now=1999999999.0) == "alice ✓"
    empty = ".2000000000.kcFwZUM5RF326kqdIQS9pvu2bpFz9ThTm5U-y_uZig0"
    assert signer.sign("session", "", 2000000000) == empty
    assert signer.verify("session", empty, now=1999999999.0) == ""


def test_any_secret_of_several_verifies_whatever_its_place():
    for secrets in (
        [NEW, OLD],
        [OLD, NEW],
        [NEW, OLD, "a third secret, thirty-two chars.."],
    ):
        verifier = CookieSigner(secrets)
        for signer in (NEW, OLD):
            cookie = CookieSigner([signer]).sign("s", "v", 2000000000)
            assert verifier.verify("s", cookie, now=0.0) == "v", (secrets, signer)
    stranger = CookieSigner(["a stranger's secret, thirty-two chars"])
    with pytest.raises(webapi.InvalidSecureCookieError):
        CookieSigner([NEW, OLD]).verify(
            "s", stranger.sign("s", "v", 2000000000), now=0.0
        )


def test_a_secret_of_exactly_the_minimum_length_is_accepted():
    CookieSigner(["x" * auth.MIN_SECRET_LENGTH])
    assert auth.MIN_SECRET_LENGTH == 32
    with pytest.raises(ValueError, match="secret 1 is shorter than 32 characters"):
        CookieSigner(["x" * 31])


@pytest_twisted.ensureDeferred
async def test_an_empty_value_round_trips():
    test_client = client()
    value, _ = cookie_of(await test_client.put("/c/cookie/s?value="), "s")
    response = await test_client.get("/c/cookie/s", headers={"Cookie": f"s={value}"})
    assert response.json == {"value": ""}


class Attributes(URLMatchJSONResource):
    routes = r"attributes"

    def render_PUT(self, request):
        options = {k: v[0] for k, v in request.args.items()}
        for flag in ("http_only", "secure"):
            if flag in options:
                options[flag] = options[flag] == "true"
        auth.set_secure_cookie(request, "c", "v", expires_days=1, **options)
        return {}


@pytest.mark.parametrize(
    "query, attributes",
    [
        (
            "domain=example.com",
            "Domain=example.com; Path=/; Max-Age=86400; HttpOnly; SameSite=lax",
        ),
        ("same_site=Strict", "Path=/; Max-Age=86400; HttpOnly; SameSite=strict"),
        ("same_site=lax", "Path=/; Max-Age=86400; HttpOnly; SameSite=lax"),
        ("http_only=false", "Path=/; Max-Age=86400; SameSite=lax"),
        (
            "path=/api&secure=true",
            "Path=/api; Max-Age=86400; Secure; HttpOnly; SameSite=lax",
        ),
    ],
)
@pytest_twisted.ensureDeferred
async def test_cookie_attributes(query, attributes):
    api = make_api("k_api", [("1.0", r"1\.0", [Attributes])])
    response = await TestClient({"k": api}, cookie_secrets=[NEW]).put(
        f"/k/attributes?{query}"
    )
    [header] = response.header_values("set-cookie")
    value, rest = re.fullmatch(r"c=([^;]+); Expires=[^;]+; (.*)", header).groups()
    assert rest == attributes
    assert CookieSigner([NEW]).verify("c", value, now=time.time()) == "v"


@pytest_twisted.ensureDeferred
async def test_an_unknown_same_site_is_a_programming_error():
    api = make_api("k_api", [("1.0", r"1\.0", [Attributes])])
    response = await TestClient({"k": api}, cookie_secrets=[NEW]).put(
        "/k/attributes?same_site=None"
    )
    assert response.status == 500


def test_a_value_whose_encoding_ends_in_any_letter_round_trips():
    signer = CookieSigner([NEW])
    for value in ("ab\x17", "a", "ab", "abc", "\u2713" * 7):
        cookie = signer.sign("s", value, 2000000000)
        assert signer.verify("s", cookie, now=0.0) == value
    assert signer.sign("s", "ab\x17", 1).startswith("YWIX.")


@pytest.mark.parametrize(
    "expires, accepted", [(10**12 - 1, True), (10**12, False), (1, True)]
)
def test_an_expiry_has_at_most_twelve_digits(expires, accepted):
    signer = CookieSigner([NEW])
    cookie = signer.sign("s", "v", expires)
    if accepted:
        assert signer.verify("s", cookie, now=0.0) == "v"
    else:
        with pytest.raises(webapi.InvalidSecureCookieError):
            signer.verify("s", cookie, now=0.0)


@pytest_twisted.ensureDeferred
async def test_a_malformed_cookie_error_exactly():
    response = await client().get(
        "/c/cookie/session", headers={"Cookie": "session=YWxpY2U.0099.Zm9v"}
    )
    assert response.json == envelope(
        "InvalidSecureCookieError",
        507,
        "Secure cookie 'session' signature 'Zm9v' is invalid.",
    )


@pytest_twisted.ensureDeferred
async def test_two_cookies_of_one_name():
    test_client = client()
    first, _ = cookie_of(await test_client.put("/c/cookie/s?value=one"), "s")
    second, _ = cookie_of(await test_client.put("/c/cookie/s?value=two"), "s")
    expired, _ = cookie_of(await test_client.put("/c/cookie/s?value=old&days=-1"), "s")

    async def read(cookies):
        return await test_client.get("/c/cookie/s", headers={"Cookie": cookies})

    assert (await read(f"s={first}; s=garbage")).json == {"value": "one"}
    assert (await read(f"s=garbage; other=1; s={first}")).json == {"value": "one"}
    assert (await read(f"s={first}; s={first}")).json == {"value": "one"}
    assert (await read(f"s={expired}; s={second}")).json == {"value": "two"}
    assert (await read(f"s={first}; s={second}")).json == envelope(
        "InvalidSecureCookieError",
        507,
        "Secure cookie 's' signature '(ambiguous)' is invalid.",
    )
    # With none valid, an expired one says so, wherever it stands.
    for cookies in (f"s={expired}; s=garbage", f"s=garbage; s={expired}"):
        assert (await read(cookies)).json == envelope(
            "ExpiredSecureCookieError", 508, "Secure cookie 's' is expired."
        )
    response = await test_client.get(
        "/c/cookie/s", headers=[("Cookie", "s=garbage"), ("Cookie", f"s={first}")]
    )
    assert response.json == {"value": "one"}


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("__Host-s", {"path": "/api"}, "a __Host- cookie has Path=/ and no Domain"),
        (
            "__Host-s",
            {"domain": "example.com"},
            "a __Host- cookie has Path=/ and no Domain",
        ),
        ("s", {"same_site": "None"}, "same_site is Lax or Strict"),
    ],
)
def test_cookie_programming_errors_say_what_is_wrong(name, options, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        auth.set_secure_cookie(None, name, "v", **options)


@pytest_twisted.ensureDeferred
async def test_without_secrets_the_log_says_what_to_configure():
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        api = make_api("c_api", [("1.0", r"1\.0", [Cookies])])
        response = await TestClient({"c": api}).put("/c/cookie/s?value=v")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert response.status == 500
    [failure] = [e for e in events if "log_failure" in e]
    assert str(failure["log_failure"].value) == (
        "secure cookies need secrets: set [auth] secure_cookies_secrets "
        "(or APIRouter(cookie_secrets=...))"
    )
