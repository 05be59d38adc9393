"""A webhook receiver for the demo: verify, store, show.

POST ``/demo-receiver/<name>/`` checks the Standard Webhooks signature against the
secret of each webhook (Subscription) whose URL ends with this path, and the basic-auth
credentials if that webhook has any. Every request is stored; a genuine one is answered
204, anything else 401. GET shows what arrived.
"""

import base64
import binascii
import hmac
import json

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from webhooks.models import Subscription
from webhooks.signing import InvalidSignature, verify

from .models import ReceivedWebhook

PAGE_SIZE = 200


@csrf_exempt
@require_http_methods(["GET", "POST"])
def inbox(request, name):
    if request.method == "POST":
        return receive(request, name)
    received = ReceivedWebhook.objects.filter(name=name)[:PAGE_SIZE]
    rows = [
        {
            "event_type": r.event_type,
            "received_at": r.received_at,
            "verified": r.verified,
            "error": r.error,
            "webhook_id": r.webhook_id,
            "payload": json.dumps(r.payload, indent=2) if r.payload is not None else r.body,
        }
        for r in received
    ]
    return render(
        request,
        "demo_receiver/inbox.html",
        {"name": name, "rows": rows, "total": ReceivedWebhook.objects.filter(name=name).count()},
    )


def receive(request, name):
    headers = {k.lower(): v for k, v in request.headers.items()}
    body = request.body
    error = check(name, headers, body)
    stored_headers = {k: v for k, v in headers.items() if k != "authorization"}
    ReceivedWebhook.objects.create(
        name=name,
        headers=stored_headers,
        body=body.decode("utf-8", errors="replace"),
        verified=not error,
        error=error,
    )
    if error:
        return HttpResponse(error, status=401, content_type="text/plain")
    return HttpResponse(status=204)


def check(name, headers, body) -> str:
    """An empty string if a webhook pointed at this inbox signed the request, else why not."""
    candidates = Subscription.objects.filter(url__endswith=f"/demo-receiver/{name}/")
    if not candidates.exists():
        return "no webhook points at this inbox"
    reason = "signature does not match"
    for subscription in candidates:
        secrets = [subscription.secret, subscription.previous_secret]
        # A secret that cannot be decrypted (an ``UnreadableSecret``) verifies nothing.
        secrets = [secret for secret in secrets if secret and isinstance(secret, str)]
        if not any(_verifies(secret, headers, body) for secret in secrets):
            continue
        if subscription.basic_auth_username and not _basic_auth_ok(subscription, headers):
            reason = "basic auth missing or wrong"
            continue
        return ""
    return reason


def _verifies(secret, headers, body) -> bool:
    try:
        verify(secret, headers, body)
    except (InvalidSignature, ValueError):  # ValueError: a stored secret that is not base64
        return False
    return True


def _basic_auth_ok(subscription, headers) -> bool:
    scheme, _, encoded = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    username, _, password = decoded.partition(":")
    expected = f"{subscription.basic_auth_username}:{subscription.basic_auth_password}"
    return bool(username) and hmac.compare_digest(
        f"{username}:{password}".encode(), expected.encode()
    )


def index(request):
    names = ReceivedWebhook.objects.order_by("name").values_list("name", flat=True).distinct()
    return render(request, "demo_receiver/index.html", {"names": list(names)})
