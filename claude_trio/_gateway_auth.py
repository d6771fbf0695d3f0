"""Who may use the gateway, and as which tenant. Sans-I/O.

A request names its token in ``x-api-key`` or ``Authorization: Bearer``. Tokens are
compared in constant time, against every configured token, so neither the match nor
its position can be timed. Each token is a tenant of its own: its `Tenant.namespace` is
derived from the token, so two tokens never share a ``claude`` process, whatever their
names.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import attrs

from ._gateway_errors import GatewayError

#: Host names that always mean this machine.
LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain"})

_MIN_TOKEN_CHARS: Final = 8


@attrs.frozen
class Tenant:
    """The caller of a request.

    Attributes:
        name: The token's name, for logs (never the token itself).
        namespace: The backend namespace of its conversations.
    """

    name: str
    namespace: str


#: The one tenant of a gateway configured without tokens.
ANONYMOUS: Final = Tenant(name="-", namespace="")


def is_loopback(host: str) -> bool:
    """Whether *host* (an address or a name) is this machine only."""
    host = host.strip("[]")
    if host.lower().removesuffix(".") in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token(token: str, where: str) -> str:
    """Return *token* if it is usable: at least 8 characters, printable, no whitespace.

    Raises:
        ValueError: Naming *where* the token came from.
    """
    if len(token) < _MIN_TOKEN_CHARS:
        raise ValueError(f"{where}: a token needs at least {_MIN_TOKEN_CHARS} characters")
    if not token.isprintable() or any(ch.isspace() for ch in token):
        raise ValueError(f"{where}: a token must be printable and hold no whitespace")
    return token


def load_tokens_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a tokens file: one token per line, optionally after a name and a space.

    ``# comments`` and blank lines are skipped. A token without a name is named
    ``token-<line number>``. The file must not be readable by group or others (as with
    ssh keys), since it holds secrets.

    Returns:
        The tokens, each mapped to its name.

    Raises:
        ValueError: The file is readable by others, a line is malformed, a token is too
            short, or a token or a name appears twice.
        OSError: The file cannot be read.
    """
    file = Path(path)
    mode = file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"{file}: the tokens file is open to group or others (mode {stat.filemode(mode)}); "
            f"run: chmod 600 {file}"
        )
    tokens: dict[str, str] = {}
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) > 2:
            raise ValueError(f"{file}:{number}: expected 'TOKEN' or 'NAME TOKEN'")
        name, token = (parts[0], parts[1]) if len(parts) == 2 else (f"token-{number}", parts[0])
        check_token(token, f"{file}:{number}")
        if token in tokens:
            raise ValueError(f"{file}:{number}: this token is already on line of {tokens[token]!r}")
        if name in tokens.values():
            raise ValueError(f"{file}:{number}: the name {name!r} is used twice")
        tokens[token] = name
    if not tokens:
        raise ValueError(f"{file}: no token in the file")
    return tokens


class Authenticator:
    """Finds the tenant of a request from its headers.

    Args:
        tokens: The configured tokens, each mapped to its name. Empty means no token is
            required, and every request is `ANONYMOUS`.
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._tenants = [
            (token.encode(), Tenant(name=name, namespace=namespace_of(token)))
            for token, name in tokens.items()
        ]

    @property
    def required(self) -> bool:
        """Whether a request must carry a token."""
        return bool(self._tenants)

    def tenant(self, headers: Iterable[tuple[bytes, bytes]]) -> Tenant:
        """Return the tenant whose token the request carries.

        Raises:
            GatewayError: 401 when a token is required and missing or unknown.
        """
        if not self._tenants:
            return ANONYMOUS
        offered = _offered_token(headers)
        if offered is None:
            raise GatewayError(
                401, "this gateway needs a token: send it as x-api-key or Authorization: Bearer"
            )
        found = None
        for token, tenant in self._tenants:
            # Every token is compared, so the time does not depend on which one matched.
            if hmac.compare_digest(token, offered):
                found = tenant
        if found is None:
            raise GatewayError(401, "invalid token")
        return found


def namespace_of(token: str) -> str:
    """The backend namespace of a token's conversations (a hash: the token never shows)."""
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]


def check_origin(
    headers: Iterable[tuple[bytes, bytes]], *, loopback: bool, allowed_origins: Iterable[str]
) -> None:
    """Refuse what a web page could send to a gateway on this machine.

    A browser sends ``Origin`` with a cross-site request: such a request is refused unless
    its origin is allowed. On a loopback gateway, the ``Host`` must be a loopback name
    too, which defeats DNS rebinding.

    Raises:
        GatewayError: 403.
    """
    values = {name.lower(): value for name, value in headers}
    origin = values.get(b"origin")
    if origin is not None and origin.decode("latin-1") not in set(allowed_origins):
        raise GatewayError(
            403, f"requests from the web origin {origin.decode('latin-1')!r} are not allowed"
        )
    host = values.get(b"host")
    if loopback and host is not None and not is_loopback(_host_name(host.decode("latin-1"))):
        raise GatewayError(403, "this gateway answers only requests addressed to this machine")


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _offered_token(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    api_key = bearer = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"x-api-key":
            api_key = value.strip()
        elif lowered == b"authorization":
            scheme, _, rest = value.strip().partition(b" ")
            if scheme.lower() == b"bearer":
                bearer = rest.strip()
    return api_key or bearer or None
