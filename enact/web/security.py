"""Who may use the server: loopback by default, a bearer token anywhere else, and forms
that only this server's own pages can post.

* **Binding.** On a loopback address (``127.0.0.1``, ``::1``, ``localhost``) no token
  is needed. On any other address the server refuses to start without
  ``ENACT_API_TOKEN`` (``UnsafeBind``). With a token set, every request needs it,
  on any address.
* **The API** takes ``Authorization: Bearer <token>``.
* **Pages** take the same header or a session cookie, set by ``/login`` after the
  person pastes the token. The cookie holds an HMAC of the token, never the token,
  and is ``HttpOnly`` and ``SameSite=Strict``.
* **Forms** carry a CSRF token: a random value, also set as a cookie, signed with a
  secret of this process (double submit). A post from another site has neither, and
  a post whose ``Origin`` (or ``Referer``) names another host is refused before that.
  Bearer-authenticated API calls are not forms and need no CSRF token (a browser
  never adds that header on its own).
* Tokens are compared in constant time; no token, cookie or secret is ever written
  into a page, a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import urllib.parse
from dataclasses import dataclass, field

from enact.config import ENV_API_TOKEN, Settings
from enact.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7600
SESSION_COOKIE = "enact_session"
CSRF_COOKIE = "enact_csrf"
CSRF_FIELD = "csrf"


class UnsafeBind(ConfigError):
    """The server was asked to listen beyond loopback without an API token."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebConfig:
    """How the server listens and whom it serves; build it with ``from_env``.

    ``expose`` names registered invokables (``module.name``) served as
    ``POST /api/run/<name>``.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    expose: tuple[str, ...] = ()
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **options: object) -> WebConfig:
        """The token from ``settings.api_token`` (``ENACT_API_TOKEN``); the rest from
        ``options``."""
        return cls(token=settings.api_token or None, **options)  # type: ignore[arg-type]

    def check_bind(self) -> None:
        """``UnsafeBind`` if the host is not loopback and there is no token."""
        if not is_loopback(self.host) and not self.token:
            raise UnsafeBind(
                f"refusing to listen on {self.host}: beyond loopback the server needs a "
                f"bearer token; set {ENV_API_TOKEN} (for instance to the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )

    # -- authentication -------------------------------------------------------

    @property
    def auth_required(self) -> bool:
        return bool(self.token)

    def session_value(self) -> str:
        """The session cookie's value: an HMAC of the token, never the token itself."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"enact-session", hashlib.sha256).hexdigest()

    def authorized(self, authorization: str | None, session: str | None) -> bool:
        """Whether a request carries the bearer token or a valid session cookie."""
        if not self.token:
            return True
        if authorization:
            scheme, _, given = authorization.partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(
                given.strip().encode(), self.token.encode()
            ):
                return True
        return bool(session) and hmac.compare_digest(
            str(session).encode(), self.session_value().encode()
        )

    def token_matches(self, given: str) -> bool:
        return bool(self.token) and hmac.compare_digest(given.encode(), str(self.token).encode())

    # -- CSRF -------------------------------------------------------------------

    def new_csrf(self) -> str:
        """A fresh CSRF token: a nonce and its signature."""
        nonce = secrets.token_urlsafe(16)
        return f"{nonce}.{self._sign(nonce)}"

    def csrf_ok(self, form_token: str | None, cookie_token: str | None) -> bool:
        """The form's token equals the cookie's, and this process signed it."""
        if not form_token or not cookie_token:
            return False
        if not hmac.compare_digest(form_token.encode(), cookie_token.encode()):
            return False
        nonce, _, signature = form_token.partition(".")
        return hmac.compare_digest(signature.encode(), self._sign(nonce).encode())

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.secret, nonce.encode(), hashlib.sha256).hexdigest()[:32]


def same_origin(origin: str | None, referer: str | None, host: str | None) -> bool:
    """Whether a post comes from a page of this server.

    The ``Origin`` header (else the ``Referer``) must name the ``Host`` the request
    was sent to. A post with neither is allowed here: the CSRF token still decides.
    """
    source = origin if origin and origin != "null" else referer
    if origin == "null":
        return False
    if not source:
        return True
    netloc = urllib.parse.urlsplit(source).netloc
    return bool(host) and netloc.lower() == str(host).lower()
