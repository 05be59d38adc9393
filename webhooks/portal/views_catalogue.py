"""The event catalogue: every event type a customer can subscribe to, with its description,
example payload and JSON schema, grouped by category and searchable.

The search works without JavaScript (``?q=`` filters on the server); a small script
(``portal-catalogue.js``) filters as one types.
"""

from __future__ import annotations

import json

from django.http import Http404

from ..builtin_events import OPERATIONAL_CATEGORY, UNSUBSCRIBABLE_TYPES
from ..models import EventType
from .views import PortalView

#: Longest search text looked at (a URL may carry any amount).
MAX_QUERY = 100


def catalogue_types():
    """The types a customer can subscribe to: active ones, not those sent only on request."""
    return EventType.objects.filter(is_active=True).exclude(name__in=UNSUBSCRIBABLE_TYPES)


def pretty(value) -> str:
    """JSON as people read it; the template escapes it. Odd rows become their text."""
    if value is None:
        return ""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def entry(event_type: EventType) -> dict:
    return {
        "name": event_type.name,
        "anchor": f"event-{event_type.name}",
        "category": event_type.category or "Other",
        "description": event_type.description,
        "example": pretty(event_type.example_payload),
        "schema": pretty(event_type.schema),
    }


def matches(item: dict, words: list[str]) -> bool:
    text = f"{item['name']} {item['category']} {item['description']}".casefold()
    return all(word in text for word in words)


class EventCatalogue(PortalView):
    section = "catalogue"

    def get(self, request):
        query = request.GET.get("q", "")[:MAX_QUERY].strip()
        words = query.casefold().split()
        items = [entry(t) for t in catalogue_types().order_by("category", "name")]
        groups: dict[str, list[dict]] = {}
        for item in items:
            # Every type is on the page, those not matching hidden: the script that filters
            # as one types can show them again.
            item["hidden"] = not matches(item, words)
            groups.setdefault(item["category"], []).append(item)
        # Notices about the customer's own webhooks come after the platform's events,
        # as in the event picker.
        operational = groups.pop(OPERATIONAL_CATEGORY, None)
        if operational:
            groups[OPERATIONAL_CATEGORY] = operational
        shown = sum(1 for item in items if not item["hidden"])
        return self.render(
            "webhooks/portal/catalogue.html",
            groups=[
                {
                    "category": category,
                    "slug": f"category-{number}",
                    "types": types,
                    "hidden": all(item["hidden"] for item in types),
                }
                for number, (category, types) in enumerate(groups.items())
            ],
            query=query,
            total=len(items),
            shown=shown,
        )


class EventTypeDetail(PortalView):
    section = "catalogue"

    def get(self, request, name):
        event_type = catalogue_types().filter(name=name).first()
        if event_type is None:
            raise Http404("No such event type.")
        return self.render("webhooks/portal/event_type.html", event_type=entry(event_type))
