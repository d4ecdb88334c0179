"""The server's pure parts, without servers: typed fields and parsing, rendering of
contexts (escaped), and the checks of ``enact.web.security``."""

from __future__ import annotations

import typing

import pytest

from enact.config import Settings
from enact.errors import AnswerTypeError
from enact.requests import InputRequest, check_answer
from enact.web.forms import AnswerParseError, field_for, from_json, parse_form, to_json
from enact.web.render import render_value
from enact.web.security import UnsafeBind, WebConfig, is_loopback, same_origin
from tests.web.flows import Color, Point


def test_field_follows_the_requested_type():
    assert field_for(bool).kind == "checkbox"
    assert field_for(int).kind == "int" and field_for(float).kind == "float"
    assert field_for(str).kind == "text"
    color = field_for(Color)
    assert color.kind == "select" and color.options == (("RED", "RED"), ("BLUE", "BLUE"))
    literal = field_for(typing.Literal["a", 2])
    assert literal.kind == "select" and literal.options == (('"a"', "'a'"), ("2", "2"))
    for other in (list, dict, Point, typing.Any):
        assert field_for(other).kind == "json"


def test_parse_form_reads_what_the_person_meant():
    assert parse_form(int, " 3 ") == 3 and type(parse_form(int, "3")) is int
    assert parse_form(int, "2.5") == 2.5  # a float: the flow's check refuses it
    assert parse_form(float, "2") == 2.0
    assert parse_form(bool, None) is False and parse_form(bool, "true") is True
    assert parse_form(str, "") == ""
    assert parse_form(Color, "BLUE") is Color.BLUE
    assert parse_form(typing.Literal["a", 2], "2") == 2
    assert parse_form(list, "[1, 2]") == [1, 2]
    assert parse_form(Point, '{"x": 1, "y": 2}') == Point(1, 2)
    for requested, raw, message in [
        (int, "three", "is not a number"),
        (int, "", "enter a number"),
        (int, "true", "is not a number"),
        (Color, "GREEN", "is not one of RED, BLUE"),
        (list, "[1,", "not valid JSON"),
        (list, " ", "enter a JSON value"),
        (Point, '{"x": 1, "z": 2}', "has no field 'z'"),
        (Point, '{"x": 1}', "cannot make a Point"),
    ]:
        with pytest.raises(AnswerParseError, match=message):
            parse_form(requested, raw)


def test_the_flows_check_judges_parsed_answers():
    request = InputRequest(int, "n?")
    check_answer(request, parse_form(int, "3"))
    with pytest.raises(AnswerTypeError):
        check_answer(request, parse_form(int, "2.5"))


def test_json_shapes_enums_resources_and_tuples():
    assert from_json(Color, "RED") is Color.RED and from_json(Color, "blue") is Color.BLUE
    assert from_json(Color, "green") == "green"  # left for the check to refuse
    assert from_json(Point, {"x": 1, "y": 2}) == Point(1, 2)
    assert from_json(tuple, [1, 2]) == (1, 2)
    assert to_json({"p": Point(1, 2), "c": Color.RED, "t": (1,)}) == {
        "p": {"x": 1, "y": 2}, "c": "RED", "t": [1],
    }  # fmt: skip


def test_render_escapes_and_structures():
    html = str(render_value(["<b>x</b>", {"k": Point(1, 2)}, Color.RED, b"abc", None]))
    assert "<b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.startswith('<ol class="list" start="0">')
    assert "<caption>Point</caption>" in html and "<th>x</th>" in html
    assert "RED" in html and "&lt;3 bytes&gt;" in html
    assert "and 10 more" in str(render_value(list(range(60))))
    deep: list = []
    for _ in range(20):
        deep = [deep]
    assert "…" in str(render_value(deep))


def test_binding_beyond_loopback_needs_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.7")
    WebConfig(host="127.0.0.1").check_bind()
    with pytest.raises(UnsafeBind, match="ENACT_API_TOKEN"):
        WebConfig(host="0.0.0.0").check_bind()
    WebConfig.from_settings(Settings(api_token="t"), host="0.0.0.0").check_bind()
    assert "t0ken" not in repr(WebConfig(token="t0ken"))


def test_tokens_sessions_and_csrf():
    config = WebConfig(token="s3cret")
    assert config.authorized("Bearer s3cret", None)
    assert not config.authorized("Bearer nope", None) and not config.authorized(None, None)
    assert not config.authorized("Basic s3cret", None)
    assert config.authorized(None, config.session_value())
    assert "s3cret" not in config.session_value()
    assert WebConfig().authorized(None, None)  # no token: loopback, open

    token = config.new_csrf()
    assert config.csrf_ok(token, token)
    assert not config.csrf_ok(token, config.new_csrf())  # form and cookie differ
    assert not config.csrf_ok(token, None) and not config.csrf_ok(None, token)
    forged = token.split(".")[0] + ".0000"
    assert not config.csrf_ok(forged, forged)
    assert not WebConfig().csrf_ok(token, token)  # another process's secret


def test_same_origin():
    assert same_origin("http://h:1", None, "h:1")
    assert same_origin(None, "http://h:1/inbox", "h:1")
    assert same_origin(None, None, "h:1")  # no header: the CSRF token decides
    assert not same_origin("http://evil.example", None, "h:1")
    assert not same_origin(None, "http://evil.example/x", "h:1")
    assert not same_origin("null", None, "h:1")


def test_healthz_is_503_while_redis_does_not_answer():
    import socket

    from fastapi.testclient import TestClient

    import enact.worker
    from enact.web.app import create_app

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = enact.worker.runtime.settings()
    enact.worker.reconfigure(
        Settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_connect_timeout_s=0.5)
    )
    try:
        with TestClient(create_app(WebConfig())) as client:
            reply = client.get("/healthz")
        assert reply.status_code == 503 and reply.json() == {"status": "unavailable"}
    finally:
        enact.worker.reconfigure(before)
