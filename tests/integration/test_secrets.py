"""No secret in any message or log: every error path that takes a URL (issue 9).

Each case makes an operation fail with a URL that carries a password, then
checks the password appears nowhere: not in the message, not in ``repr``, and
not in the whole printed traceback (causes and contexts included), which is
what a log shows. Servers are real: unreachable ports, a moto S3 server, and a
``redis-server`` that requires a password.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import traceback
from typing import Any, Callable

import pytest

import enact
from enact import config
from enact.redaction import redact, redact_url, safe_cause

SECRET = "pw-5up3r-s3cr3t"


def assert_no_secret(exc: BaseException, secret: str = SECRET) -> None:
    shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for text in shown:
        assert secret not in text, text


def raised_by(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(enact.errors.EnactError) as info:
        call()
    assert_no_secret(info.value)
    return info.value


# The helper ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, shown",
    [
        (f"redis://user:{SECRET}@host:6379/0", "redis://user:***@host:6379/0"),
        (f"redis://:{SECRET}@host", "redis://:***@host"),
        (f"https://{SECRET}@host/x", "https://***@host/x"),
        (f"redis://:ab/{SECRET}@host:1", "redis://***@host:1"),
        (f"s3://b/p?endpoint_url=x&password={SECRET}", "s3://b/p?endpoint_url=x&password=***"),
        (f"http://h/?X-Amz-Signature={SECRET}&a=1#f", "http://h/?X-Amz-Signature=***&a=1#f"),
        ("s3://bucket/prefix?region=eu", "s3://bucket/prefix?region=eu"),
        ("file:.enact", "file:.enact"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_finds_every_url_in_a_text() -> None:
    text = f'failed: "http://u:{SECRET}@a:1/x" then redis://:{SECRET}@b:2, done'
    assert redact(text) == 'failed: "http://u:***@a:1/x" then redis://:***@b:2, done'


def test_a_cause_that_shows_a_secret_is_not_chained() -> None:
    inner = ValueError(f"bad endpoint http://u:{SECRET}@h")
    outer = RuntimeError("wrapper")
    outer.__cause__ = inner
    assert safe_cause(outer) is None
    harmless = ValueError("bad endpoint")
    assert safe_cause(harmless) is harmless


# Store URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://user:{SECRET}@host/x",
        f"s3://user:{SECRET}@bucket/prefix",
        f"s3://bucket/prefix?password={SECRET}",
        f"s3://bucket/prefix?token={SECRET}&region=x",
        f"s3://bucket/prefix?endpoint_url=ftp://user:{SECRET}@host",
        f"s3://bucket/prefix?endpoint_url=http://user:{SECRET}@[::1",
        f"redis://:{SECRET}@[::1/0",
        f"redis://user:{SECRET}@host:notaport/0",
        f"redis://user:{SECRET}@host:6379/db",
        f"redis://user:{SECRET}@host:6379/0?retries=many",
        f"rediss://:{SECRET}@/0",
    ],
)
def test_malformed_store_urls(url: str) -> None:
    error = raised_by(lambda: enact.Store(url))
    assert isinstance(error, enact.errors.ConfigError)


def test_store_url_from_the_environment() -> None:
    env = {config.ENV_STORE_URL: f"gopher://admin:{SECRET}@host"}
    raised_by(lambda: config.open_backend(settings=config.Settings.from_env(env)))


def test_unreachable_s3_endpoint_with_credentials(
    unused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    endpoint = f"http://admin:{SECRET}@127.0.0.1:{unused_port}"
    store = enact.Store(f"s3://bucket/prefix?endpoint_url={endpoint}&max_attempts=1")
    assert SECRET not in repr(store) and SECRET not in repr(store.backend)
    digest = "ab" * 32
    for call in (
        lambda: store.has(digest),
        lambda: store.commit({"x": 1}),
        lambda: store.get_object(digest),
        lambda: store.backend.locate(digest),  # type: ignore[attr-defined]
    ):
        error = raised_by(call)
        assert isinstance(error, enact.errors.StoreUnavailable)
        assert f"127.0.0.1:{unused_port}" in str(error)


def test_s3_endpoint_with_credentials_from_the_environment(unused_port: int) -> None:
    env = {
        "ENACT_S3_ENDPOINT_URL": f"http://admin:{SECRET}@127.0.0.1:{unused_port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    settings = config.Settings.from_env(env)
    backend = config.open_backend("s3://bucket/prefix?max_attempts=1", settings)
    raised_by(lambda: backend.get(["ab" * 32]))


def test_s3_errors_from_a_server(s3_endpoint: str, s3_bucket: str) -> None:
    # moto ignores credentials in the endpoint; the errors it returns still carry it.
    host = s3_endpoint.removeprefix("http://")
    endpoint = f"http://admin:{SECRET}@{host}"
    missing = enact.Store(f"s3://no-such-bucket-{s3_bucket}/p?endpoint_url={endpoint}")
    raised_by(lambda: missing.commit(1))
    store = enact.Store(f"s3://{s3_bucket}/p?endpoint_url={endpoint}")
    with store:
        ref = enact.commit([1, 2, 3])
        assert ref.checkout() == [1, 2, 3]


def test_unreachable_redis_with_credentials(unused_port: int) -> None:
    from enact.stores.redis import RedisBackend, RedisState

    url = f"redis://admin:{SECRET}@127.0.0.1:{unused_port}/0?retries=1"
    state = RedisState.from_url(url)
    assert SECRET not in repr(state)
    for call in (state.ping, lambda: state.get_ref("x"), state.list_refs):
        assert isinstance(raised_by(call), enact.errors.StoreUnavailable)
    backend = RedisBackend.from_url(url)
    assert SECRET not in repr(backend)
    store = enact.Store(backend)
    assert isinstance(raised_by(lambda: store.get_object("ab" * 32)), enact.errors.StoreUnavailable)
    raised_by(lambda: store.commit(1))


@pytest.fixture
def locked_redis(redis_server: Any) -> Any:
    """A redis-server that requires a password (SECRET)."""
    redis_server.args = ("--requirepass", SECRET)
    redis_server.restart()
    return redis_server


def test_refused_redis_credentials(locked_redis: Any) -> None:
    from enact.stores.redis import RedisBackend, RedisState

    wrong = f"redis://:{SECRET}-wrong@127.0.0.1:{locked_redis.port}/0"
    missing = f"redis://127.0.0.1:{locked_redis.port}/0"
    for url in (wrong, missing):
        error = raised_by(RedisState.from_url(url).ping)
        assert "refused" in str(error)
        raised_by(lambda: RedisBackend.from_url(url).get(["ab" * 32]))  # noqa: B023
    right = RedisState.from_url(f"redis://:{SECRET}@127.0.0.1:{locked_redis.port}/0")
    right.ping()
    right.set_ref("x", "ab" * 32)
    assert right.get_ref("x") == "ab" * 32


def test_object_cache_warnings_hide_the_password(
    unused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    from enact.stores._keys import RedisKeys
    from enact.stores.cached import CachedBackend
    from enact.stores.memory import MemoryBackend
    from enact.stores.redis import make_client

    client = make_client(
        f"redis://admin:{SECRET}@127.0.0.1:{unused_port}/0?retries=1", decode_responses=False
    )
    cached = CachedBackend(MemoryBackend(), client, RedisKeys("p"))
    with caplog.at_level(logging.WARNING, logger="enact.stores.cached"):
        cached.put({"ab" * 32: b"x"})
        assert cached.get(["ab" * 32]) == [b"x"]
    assert caplog.records, "the failing cache should have logged"
    for record in caplog.records:
        assert SECRET not in record.getMessage()


def test_cli_errors_hide_the_password(unused_port: int, python_env: dict[str, str]) -> None:
    for store in (
        f"redis://:{SECRET}@127.0.0.1:{unused_port}/0?retries=1",
        f"s3://bucket/p?endpoint_url=http://u:{SECRET}@127.0.0.1:{unused_port}&max_attempts=1",
        f"nope://u:{SECRET}@x",
    ):
        out = subprocess.run(
            [sys.executable, "-m", "enact.cli", "show", "ab" * 32, "--store", store],
            env=dict(python_env, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode != 0
        assert "enact:" in out.stderr
        assert SECRET not in out.stdout + out.stderr
