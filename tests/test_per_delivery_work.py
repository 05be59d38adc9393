"""What a worker no longer does again for every delivery: an event's body is made once for
all its webhooks, settings are read once until they change, a URL is checked once. Each
kept value still follows a change."""

import json

import pytest

from tests.test_signing import independent_signature
from tests.testapp.models import Article
from webhooks import delivery as http
from webhooks.conf import conf
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


def test_an_events_body_is_made_once_for_all_its_webhooks(receiver, subscribe, commit, monkeypatch):
    subs = [subscribe(receiver, ["article.created"]) for _ in range(3)]
    made = []
    dumps = json.dumps

    def counted(value, *args, **kwargs):
        if isinstance(value, dict) and set(value) == {"id", "type", "timestamp", "data"}:
            made.append(value["id"])
        return dumps(value, *args, **kwargs)

    monkeypatch.setattr(http.json, "dumps", counted)
    with commit():
        Article.objects.create(title="hello")
    assert len(receiver.requests) == 3
    assert len(made) == 1  # three before: one per delivery
    assert len({r.body for r in receiver.requests}) == 1
    secrets = {sub.secret for sub in subs}
    for request in receiver.requests:
        msg_id = request.headers["webhook-id"]
        ts = int(request.headers["webhook-timestamp"])
        signatures = request.headers["webhook-signature"].split()
        assert any(
            independent_signature(secret, msg_id, ts, request.body) in signatures
            for secret in secrets
        )


def test_an_events_body_follows_values_replaced_on_its_instance(subscribe, receiver, commit):
    subscribe(receiver, ["article.created"])
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="first")
    first, second = Delivery.objects.select_related("event")
    second.event = first.event  # one Event instance, as a task's deliveries share it
    assert json.loads(http.envelope(first))["data"]["title"] == "first"
    first.event.data = {**first.event.data, "title": "second"}
    assert json.loads(http.envelope(second))["data"]["title"] == "second"
    first.event.type = "article.updated"
    assert json.loads(http.envelope(first))["type"] == "article.updated"


def test_a_changed_setting_is_read_again(receiver, subscribe, commit, settings):
    subscribe(receiver, ["article.created"])
    with commit():
        Article.objects.create(title="before")
    assert receiver.requests[-1].headers["User-Agent"].startswith("django-webhooks/")
    settings.WEBHOOKS_USER_AGENT = "Platform-Hooks/2.0"
    with commit():
        Article.objects.create(title="after")
    assert receiver.requests[-1].headers["User-Agent"] == "Platform-Hooks/2.0"
    settings.WEBHOOKS_TIMEOUT = 0.25
    assert conf.TIMEOUT == 0.25
    del settings.WEBHOOKS_TIMEOUT
    assert conf.TIMEOUT == 10.0  # the default


def test_a_webhooks_url_is_checked_as_it_is_now(receiver, subscribe):
    sub = subscribe(receiver, ["article.created"])
    http.check_settings(sub)  # a valid URL, checked (and kept) once
    sub.url = "http://exa mple.com/hook"
    with pytest.raises(http.Unsendable, match="spaces"):
        http.check_settings(sub)
    sub.url = "ftp://example.com/hook"
    with pytest.raises(http.Unsendable, match="http:// or https://"):
        http.check_settings(sub)


def test_stored_text_is_escaped_exactly_where_it_must_be():
    """Printable ASCII skips the search for characters to escape; every other text has it."""
    from webhooks.responses import safe_text

    for code in [*range(0x100), 0x2028, 0xD800, 0xFEFF, 0x1F680]:
        text = f"a{chr(code)}b"
        unsafe = code < 0x20 and chr(code) not in "\t\n\r" or 0x7F <= code <= 0x9F
        unsafe = unsafe or 0xD800 <= code <= 0xDFFF
        expected = f"a\\x{code:02x}b" if unsafe and code < 0x100 else text
        expected = f"a\\u{code:04x}b" if unsafe and code >= 0x100 else expected
        assert safe_text(text) == expected, hex(code)
    assert safe_text("x" * 10, limit=4) == "xxxx"
    assert safe_text("\x00" * 3, limit=5) == "\\x00\\"


def test_a_request_handed_to_the_senders_pool_tells_its_end_once():
    import threading

    from webhooks.sender import _Pool

    pool, ended = _Pool(4), []
    gate = threading.Event()
    job = pool.submit(lambda: gate.wait(5) and "answered")
    job.add_done_callback(lambda j: ended.append(("early", j.result())))
    assert not job.done()
    gate.set()
    failing = pool.submit(lambda: 1 / 0)
    for waited in (job, failing):
        for _ in range(500):
            if waited.done():
                break
            threading.Event().wait(0.01)
    assert job.result() == "answered" and ended == [("early", "answered")]
    job.add_done_callback(lambda j: ended.append(("late", j.result())))  # called at once
    assert ended[-1] == ("late", "answered")
    with pytest.raises(ZeroDivisionError):
        failing.result()
