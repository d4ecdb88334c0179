"""Keep secrets out of messages and logs: mask the credentials in URLs.

Store, Redis and S3 endpoint URLs may carry credentials
(``redis://user:password@host``, ``http://key:secret@minio:9000``,
``...?token=...``). Every error message and log line that shows a URL, or the
text of a client library's exception (which may quote the URL it failed on),
goes through this module first. It is the one place that decides what a secret
looks like, so a new error path cannot forget half of the rule.

What is masked:

* the password of ``user:password@`` (the user name stays: it helps and is not
  a secret), and a lone ``token@`` user part (often a secret used as a user);
* the values of query parameters whose names suggest a secret (``password``,
  ``secret``, ``token``, ``key``, ``signature``, ``credential``, ``auth``).
"""

from __future__ import annotations

import re
import urllib.parse

MASK = "***"

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>`]*")
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|sig|credential|auth", re.IGNORECASE)
_AUTHORITY_END = re.compile(r"[/?#]")


def redact_url(url: str) -> str:
    """``url`` with its credentials masked; other text is returned unchanged.

    Never raises: a URL too malformed to parse is masked by a cruder rule
    (everything between ``://`` and the last ``@``).
    """
    if not isinstance(url, str):
        url = str(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = _AUTHORITY_END.search(rest)
    authority = rest[: end.start()] if end else rest
    tail = rest[len(authority) :]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        masked = f"{user}:{MASK}" if colon else MASK
        authority = f"{masked}@{host}"
    elif ":" in authority and "@" in tail:
        # A password with an unescaped "/" (redis://:ab/cd@host) ends the
        # authority early; mask up to the last "@" rather than guess.
        return f"{scheme}://{MASK}@{rest.rpartition('@')[2]}"
    return f"{scheme}://{authority}{_redact_query(tail)}"


def _redact_query(tail: str) -> str:
    path, qmark, query = tail.partition("?")
    if not qmark:
        return tail
    query, hash_, fragment = query.partition("#")
    pairs = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq and value and _SECRET_PARAM.search(urllib.parse.unquote(name)):
            value = MASK
        pairs.append(f"{name}{eq}{value}")
    return f"{path}?{'&'.join(pairs)}{hash_}{fragment}"


def redact(text: object) -> str:
    """``str(text)`` with the credentials of every URL in it masked.

    For messages of foreign exceptions, which may quote the URL they failed on.
    """
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))


def safe_cause(cause: BaseException) -> BaseException | None:
    """``cause``, or ``None`` if the text of its chain shows a credential.

    Use as ``raise OurError(redacted message) from safe_cause(exc)``: the cause
    is kept for debugging unless printing it (a traceback, a log) would leak.
    """
    return None if _shows_secret(cause) else cause


def _shows_secret(exc: BaseException | None) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = f"{exc} {exc.args!r}"
        if redact(text) != text:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
