"""One frozen Settings object, read once; backends opened through the scheme table."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

import enact
from enact import backend, config
from enact.config import Settings
from enact.stores._keys import DEFAULT_PREFIX


def test_from_env_reads_every_variable() -> None:
    env = {
        "ENACT_STORE_URL": "memory://",
        "ENACT_REDIS_URL": "redis://r:1/2",
        "ENACT_REDIS_PREFIX": "p",
        "ENACT_IMPORTS": "a.b, c  d",
        "ENACT_S3_ENDPOINT_URL": "http://s3:1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_PROFILE": "prof",
        "ENACT_VISIBILITY_TIMEOUT_S": "60",
        "ENACT_WORKER_CONCURRENCY": "4",
        "ENACT_WORKER_POOL": "solo",
        "ENACT_CHECKPOINT_INTERVAL_S": "0.5",
        "ENACT_FLOW_LOCK_TTL_S": "9",
        "ENACT_CACHE_URL": "off",
        "ENACT_CACHE_TTL_S": "7",
    }
    s = Settings.from_env(env)
    assert (s.store_url, s.redis_url, s.broker_url, s.redis_prefix) == (
        "memory://", "redis://r:1/2", "redis://r:1/2", "p",
    )  # fmt: skip
    assert s.imports == ("a.b", "c", "d")
    assert (s.s3_endpoint_url, s.aws_region, s.aws_access_key_id, s.aws_profile) == (
        "http://s3:1", "eu-west-1", "id", "prof",
    )  # fmt: skip
    assert s.aws_secret_access_key == "secret"
    assert (s.visibility_timeout_s, s.worker_concurrency, s.worker_pool) == (60.0, 4, "solo")
    assert (s.checkpoint_interval_s, s.flow_lock_ttl_s) == (0.5, 9.0)
    assert (s.cache_url, s.cache_ttl_s) == (None, 7.0)


def test_defaults_and_what_follows_what() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.store_url == config.DEFAULT_STORE_URL == "file:.enact"
    assert s.broker_url == s.redis_url == s.cache_url == config.DEFAULT_REDIS_URL
    assert s.redis_prefix == config.DEFAULT_REDIS_PREFIX == DEFAULT_PREFIX
    by_hand = Settings(redis_url="redis://elsewhere:1/0")
    assert by_hand.broker_url == by_hand.cache_url == "redis://elsewhere:1/0"
    assert Settings(cache_url=None).cache_url is None
    assert Settings.from_env({"AWS_ENDPOINT_URL": "http://a:1"}).s3_endpoint_url == "http://a:1"


def test_settings_are_frozen_and_replaced_whole() -> None:
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.store_url = "memory://"  # type: ignore[misc]
    assert s.replace(store_url="memory://").store_url == "memory://"
    assert s.store_url == "file:.enact"


@pytest.mark.parametrize(
    "name, raw",
    [
        ("ENACT_VISIBILITY_TIMEOUT_S", "soon"),
        ("ENACT_CACHE_TTL_S", "-1"),
        ("ENACT_WORKER_CONCURRENCY", "nan"),
        ("ENACT_CHECKPOINT_INTERVAL_S", "1s"),
    ],
)
def test_bad_numbers_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(enact.ConfigError, match=f"{name}={raw!r}"):
        Settings.from_env({name: raw})


def test_no_secret_in_the_repr() -> None:
    s = Settings.from_env(
        {
            "AWS_SECRET_ACCESS_KEY": "aws-secret",
            "AWS_SESSION_TOKEN": "aws-token",
            "ENACT_REDIS_URL": "redis://user:redis-secret@host:6379/0",
            "ENACT_CACHE_URL": "rediss://:cache-secret@cache:6380/1",
        }
    )
    text = repr(s)
    for secret in ("aws-secret", "aws-token", "redis-secret", "cache-secret"):
        assert secret not in text
    assert "redis://user:***@host:6379/0" in text and "rediss://:***@cache:6380/1" in text


def test_a_store_takes_settings_and_then_ignores_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENACT_STORE_URL", "nope://never-read")
    store = enact.Store(settings=Settings(store_url=f"file://{tmp_path}"))
    assert isinstance(store.backend, enact.FileBackend) and store.backend.root == tmp_path
    with pytest.raises(enact.ConfigError, match="nope://never-read"):
        enact.Store()  # without settings, the environment is read (once, here)


class ListBackend:
    """A third-party backend: it does not import enact."""

    opened: list[tuple[str, Any]] = []

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url: str, settings: Any) -> ListBackend:
        cls.opened.append((url, settings))
        return cls()

    def has(self, digests: Sequence[str]) -> list[bool]:
        return [d in self.objects for d in digests]

    def get(self, digests: Sequence[str]) -> list[bytes | None]:
        return [self.objects.get(d) for d in digests]

    def put(self, objects: Mapping[str, bytes]) -> None:
        self.objects.update(objects)


def test_a_third_party_backend_registers_its_scheme() -> None:
    backend.register_scheme("list+test", lambda: ListBackend)
    settings = Settings(redis_prefix="x")
    store = enact.Store("list+test://anything", settings=settings)
    assert isinstance(store.backend, ListBackend)
    assert ListBackend.opened[-1] == ("list+test://anything", settings)
    assert store.checkout(store.commit([1, "two"])) == [1, "two"]
    assert "list+test" in backend.schemes()


def test_unknown_schemes_and_bad_scheme_names_are_config_errors() -> None:
    with pytest.raises(enact.ConfigError, match=r"'ftp'.*memory://.*s3://"):
        backend.backend_class("ftp")
    with pytest.raises(enact.ConfigError, match="invalid store URL scheme 'Bad Scheme'"):
        backend.register_scheme("Bad Scheme", lambda: ListBackend)


def test_the_stores_register_their_schemes() -> None:
    assert {"memory", "file", "s3", "redis", "rediss"} <= set(backend.schemes())
    assert backend.backend_class("memory") is enact.MemoryBackend
    assert backend.backend_class("file") is enact.FileBackend
