"""The gateway's own rules, sans I/O: tokens, tenants, hosts, origins, error statuses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from claude_trio import (
    APIError,
    AuthError,
    BackendTimeoutError,
    GatewayError,
    GatewayOptions,
    InputError,
    OverloadedError,
    ProcessError,
    RateLimitError,
    error_for,
    load_tokens_file,
)
from claude_trio._gateway_auth import (
    ANONYMOUS,
    Authenticator,
    check_origin,
    is_loopback,
    namespace_of,
)

TOKEN = "token-alice-0123456789"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "localhost."]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "[::]", "0", "::ffff:0.0.0.0", "10.0.0.1", "example.com", ""]
)
def test_other_hosts_are_not_loopback_and_need_a_token(host: str) -> None:
    assert not is_loopback(host)
    if host:
        with pytest.raises(ValueError, match="without a token"):
            GatewayOptions(host=host)


def test_tokens_are_not_in_the_repr() -> None:
    options = GatewayOptions(host="0.0.0.0", tokens={TOKEN: "alice"})
    assert TOKEN not in repr(options)
    assert TOKEN not in str(options)


def test_one_origin_string_is_refused() -> None:
    with pytest.raises(TypeError, match="not one string"):
        GatewayOptions(allowed_origins="https://a.example")


def test_each_token_is_its_own_tenant() -> None:
    other = "token-bob-9876543210"
    auth = Authenticator({TOKEN: "alice", other: "bob"})
    alice = auth.tenant([(b"x-api-key", TOKEN.encode())])
    bob = auth.tenant([(b"Authorization", b"Bearer " + other.encode())])
    assert (alice.name, bob.name) == ("alice", "bob")
    assert alice.namespace != bob.namespace
    assert alice.namespace == namespace_of(TOKEN)
    assert TOKEN not in alice.namespace
    # Same name, different tokens: still different tenants.
    same_name = Authenticator({TOKEN: "x", other: "x"})
    assert (
        same_name.tenant([(b"x-api-key", TOKEN.encode())]).namespace
        != same_name.tenant([(b"x-api-key", other.encode())]).namespace
    )


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"x-api-key", b"")],
        [(b"authorization", b"Bearer ")],
        [(b"authorization", b"Basic " + TOKEN.encode())],
        [(b"x-api-key", TOKEN.encode() + b"x")],
        [(b"x-api-key", TOKEN[:-1].encode())],
    ],
)
def test_missing_or_wrong_tokens_are_401(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(GatewayError) as caught:
        Authenticator({TOKEN: "alice"}).tenant(headers)
    assert caught.value.status == 401


def test_no_tokens_means_one_anonymous_tenant() -> None:
    auth = Authenticator({})
    assert not auth.required
    assert auth.tenant([]) is ANONYMOUS


def test_origin_and_host_checks() -> None:
    check_origin([(b"host", b"127.0.0.1:8080")], loopback=True, allowed_origins=())
    check_origin([(b"host", b"[::1]:8080")], loopback=True, allowed_origins=())
    check_origin([(b"host", b"localhost")], loopback=True, allowed_origins=())
    check_origin(
        [(b"origin", b"https://ok.example")], loopback=True, allowed_origins=["https://ok.example"]
    )
    check_origin([(b"host", b"gateway.example")], loopback=False, allowed_origins=())
    for headers in (
        [(b"host", b"evil.example:8080")],
        [(b"host", b"[2001:db8::1]:80")],
        [(b"origin", b"null")],
        [(b"Origin", b"https://evil.example")],
    ):
        with pytest.raises(GatewayError) as caught:
            check_origin(headers, loopback=True, allowed_origins=["https://ok.example"])
        assert caught.value.status == 403


def _tokens_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_a_tokens_file(tmp_path: Path) -> None:
    path = _tokens_file(tmp_path, f"# tenants\n\nalice {TOKEN}\nlong-token-without-name\n")
    assert load_tokens_file(path) == {TOKEN: "alice", "long-token-without-name": "token-4"}


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        (f"alice {TOKEN}\n", 0o644, "chmod 600"),
        (f"alice {TOKEN}\nbob {TOKEN}\n", 0o600, "already"),
        (f"alice {TOKEN}\nalice other-token-123\n", 0o600, "used twice"),
        ("alice short\n", 0o600, "at least 8"),
        ("a b c\n", 0o600, "expected"),
        ("# nothing\n", 0o600, "no token"),
    ],
)
def test_bad_tokens_files_are_refused(tmp_path: Path, text: str, mode: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_tokens_file(_tokens_file(tmp_path, text, mode))


@pytest.mark.parametrize(
    ("exc", "status", "retry_after"),
    [
        (InputError("bad", where="messages[3].content[1]"), 400, None),
        (AuthError("login expired", status=401), 500, None),
        (RateLimitError("slow down", retry_after=44.2), 429, 45),
        (RateLimitError("usage limit"), 429, None),
        (OverloadedError("busy", status=529), 529, None),
        (APIError("teapot", status=418), 500, None),
        (APIError("bad request", status=400), 400, None),
        (BackendTimeoutError("full", phase="pool", timeout=1.0), 429, 5),
        (BackendTimeoutError("slow", phase="turn", timeout=1.0), 500, None),
        (ProcessError("died"), 500, None),
        (KeyError("internal detail"), 500, None),
    ],
)
def test_error_statuses(exc: Exception, status: int, retry_after: int | None) -> None:
    error = error_for(exc)
    assert (error.status, error.retry_after) == (status, retry_after)
    if retry_after is not None:
        assert error.headers == [(b"retry-after", str(retry_after).encode())]
    if isinstance(exc, KeyError):
        assert "internal detail" not in error.message
    if isinstance(exc, InputError):
        assert error.param == "messages.3.content.1"
