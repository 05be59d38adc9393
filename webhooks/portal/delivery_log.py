"""The customer's delivery log: its filters and its pages, read with a cursor.

A page is the rows just older (or newer) than a position ``(created_at, id)``, newest
first, found through the indexes: its cost does not grow with how deep the page is, and
nothing is ever counted over the whole log. Equal timestamps (one fan-out) are ordered by
id, so pages never repeat or skip a row (as the API's cursor: ``webhooks.api.pagination``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import DateTimeField, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..admin.common import STATE_CHOICES, as_uuid, in_state
from ..models import Delivery, EventType, Subscription

PAGE_SIZE = 50
BAD_CURSOR = (
    "This page link is not valid (it was changed or cut short); start again from the "
    "newest deliveries."
)
MESSAGE_ID_HELP = (
    "a message id (msg_ and 32 letters and digits, the webhook-id header your endpoint "
    "received) or an event id (a UUID such as 2f1c…-…)"
)


#: Webhooks listed in the log's "webhook" filter at most (as the admin's
#: ``WEBHOOKS_LISTED``): a customer's 10,000 would be a megabyte of HTML on every page.
#: The others are filtered on from their own page's "Deliveries" link.
WEBHOOKS_LISTED = 50


@dataclass
class CustomerWebhooks:
    """A customer's webhooks as the log needs them: the few its filter lists, and how to
    keep to all of them without naming each (a customer with 10,000 webhooks sent 10,000
    ids in one ``IN`` list with every page: 700 ms at 10M attempts)."""

    scope: str
    listed: list  # the first ``WEBHOOKS_LISTED`` by id, and the one filtered on
    complete: bool  # ``listed`` holds every webhook of the customer

    @classmethod
    def of(cls, scope: str, chosen: str = "") -> CustomerWebhooks:
        mine = Subscription.objects.filter(scope=scope).only(
            "id", "url", "description", "is_active", "scope"
        )
        # The first by id (an index), sorted by URL here: never a sort of every webhook.
        listed = list(mine.order_by("pk")[: WEBHOOKS_LISTED + 1])
        complete = len(listed) <= WEBHOOKS_LISTED
        listed = listed[:WEBHOOKS_LISTED]
        found = as_uuid(chosen or "")
        if found and all(w.pk != found for w in listed):
            listed += mine.filter(pk=found)  # the one filtered on stays shown, selected
        listed.sort(key=lambda w: (w.url, str(w.pk)))
        return cls(scope, listed, complete)

    def _ids(self, flag: bool | None = None) -> list:
        return [w.pk for w in self.listed if flag is None or w.is_active == flag]

    def _all(self, **conditions) -> Q:
        """Deliveries of the customer's webhooks: their ids when they are few, else a
        subquery on the scope (its index), which the planner joins as it sees fit."""
        wanted = Subscription.objects.filter(scope=self.scope, **conditions).values("pk")
        return Q(subscription_id__in=wanted)

    def deliveries(self):
        if self.complete:
            return Delivery.objects.filter(subscription_id__in=self._ids())
        return Delivery.objects.filter(self._all())

    def active(self, flag: bool) -> Q:
        # Their ids, not a join, when all are at hand: a state no webhook can be in (held,
        # with none disabled) then costs no scan of the log.
        if self.complete:
            return Q(subscription_id__in=self._ids(flag))
        return self._all(is_active=flag)

    def to_reach(self, filters: dict) -> list:
        """The webhooks whose index each page is read from (``within_reach``): the one
        filtered on, or all when they are at hand. None with an event type: the type is on
        the event, not in that index, so a rare type would walk a busy webhook's every row
        (540 ms on SQLite for 100,000 rows), where the event's type index finds its few
        rows at once."""
        if filters["event_type"]:
            return []
        if filters["webhook"]:
            return [filters["webhook"]]
        return self._ids() if self.complete else []

    def chosen(self, text: str):
        return next((w for w in self.listed if str(w.pk) == text), None)


def encode_cursor(delivery: Delivery) -> str:
    position = f"{delivery.created_at.isoformat()}|{delivery.pk.hex}"
    return base64.urlsafe_b64encode(position.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        moment, _, pk = raw.partition("|")
        created_at = parse_datetime(moment)
        if created_at is None or timezone.is_naive(created_at):
            raise ValueError(moment)
        return created_at, uuid.UUID(hex=pk)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(BAD_CURSOR) from None


def message_lookup(text: str) -> Q:
    """``msg_<hex>`` is one delivery (the webhook-id); a bare UUID is an event (or a
    delivery's own id, as the pages show it)."""
    text = text.strip()
    if text.startswith("msg_"):
        try:
            return Q(pk=uuid.UUID(hex=text[4:]))
        except ValueError:
            pass
    else:
        try:
            found = uuid.UUID(text)
        except ValueError:
            pass
        else:
            return Q(event_id=found) | Q(pk=found)
    raise ValidationError(f"“{text[:80]}” is not {MESSAGE_ID_HELP}.")


class LogFilters(forms.Form):
    """The log's filters, from the query string. Every one is checked: bad input is said
    so, next to its field, and shows no rows — never a crash, never silently all rows."""

    state = forms.ChoiceField(required=False, label="State")
    event_type = forms.ChoiceField(required=False, label="Event type")
    webhook = forms.ChoiceField(required=False, label="Webhook")
    from_date = forms.DateField(
        required=False,
        label="From",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the “from” date as YYYY-MM-DD, e.g. 2026-12-01."},
    )
    to_date = forms.DateField(
        required=False,
        label="To",
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the “to” date as YYYY-MM-DD, e.g. 2026-12-05."},
    )
    message = forms.CharField(
        required=False,
        max_length=100,
        label="Message or event id",
        error_messages={"max_length": f"Enter {MESSAGE_ID_HELP}."},
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    #: The fields that choose rows (kept in links and after a resend; the cursor is not).
    FILTERS = ("state", "event_type", "webhook", "from_date", "to_date", "message")

    def __init__(self, data, *, webhooks: CustomerWebhooks, event_types):
        super().__init__(data)
        self.webhooks = webhooks
        self.fields["state"].choices = [("", "Any state"), *STATE_CHOICES]
        self.fields["state"].error_messages["invalid_choice"] = (
            "Unknown state “%(value)s”: choose one of "
            + ", ".join(value for value, _ in STATE_CHOICES)
            + "."
        )
        self.fields["event_type"].choices = [("", "Any type")] + [(n, n) for n in event_types]
        self.fields["event_type"].error_messages["invalid_choice"] = (
            "No event type is named “%(value)s”; pick one from the list."
        )
        # Only this customer's webhooks: another's id is refused like a made-up one.
        self.fields["webhook"].choices = [("", "Any webhook")] + [
            (str(w.pk), w.url) for w in webhooks.listed
        ]
        self.fields["webhook"].error_messages["invalid_choice"] = (
            "None of your webhooks has the id “%(value)s”."
        )

    def full_clean(self):
        super().full_clean()
        for name in self.errors:  # each input points at its error (read by screen readers)
            if name in self.fields:
                self.fields[name].widget.attrs["aria-describedby"] = f"id_{name}_error"

    def clean_message(self):
        text = self.cleaned_data["message"].strip()
        if text:
            self.message_q = message_lookup(text)
        return text

    def clean_after(self):
        text = self.cleaned_data["after"]
        return decode_cursor(text) if text else None

    def clean_before(self):
        text = self.cleaned_data["before"]
        return decode_cursor(text) if text else None

    def clean(self):
        data = super().clean()
        start, end = data.get("from_date"), data.get("to_date")
        if start and end and start > end:
            self.add_error("to_date", "The “to” date is before the “from” date.")
        return data

    def query(self) -> dict:
        """The filters in force, as query-string parameters (for links and redirects)."""
        return {
            name: self.data[name] for name in self.FILTERS if str(self.data.get(name, "")).strip()
        }

    def apply(self, deliveries):
        """``deliveries`` narrowed by the (valid) filters."""
        data = self.cleaned_data
        if data.get("state"):
            deliveries = in_state(deliveries, data["state"], webhooks_active=self.webhooks.active)
        if data.get("event_type"):
            deliveries = deliveries.filter(event__type=data["event_type"])
        if data.get("webhook"):
            deliveries = deliveries.filter(subscription_id=uuid.UUID(data["webhook"]))
        if data.get("from_date"):
            deliveries = deliveries.filter(created_at__gte=start_of(data["from_date"]))
        if data.get("to_date"):
            deliveries = deliveries.filter(
                created_at__lt=start_of(data["to_date"] + timedelta(days=1))
            )
        if data.get("message"):
            deliveries = deliveries.filter(self.message_q)
        return deliveries


def start_of(day) -> datetime:
    """Midnight at the start of ``day``, in the site's time zone (the dates people type)."""
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass
class Page:
    rows: list
    newer: str | None  # the cursor of the page before (newer rows), if there is one
    older: str | None  # the cursor of the page after (older rows), if there is one


def page_of(deliveries, *, after=None, before=None, size: int = PAGE_SIZE, webhooks=()) -> Page:
    """One page of ``deliveries``, newest first: the rows older than ``after``, or the
    rows newer than ``before``, or the newest. ``size + 1`` rows are read, never counted,
    to know whether there is more. ``webhooks``: the ids of the webhooks ``deliveries`` are
    of, to read only as many rows of each as a page can hold (``within_reach``)."""
    if before is not None:
        moment, pk = before
        # ``created_at >= moment`` lets the index start at the position; the OR only
        # sorts out the rows sharing its timestamp.
        newer = deliveries.filter(created_at__gte=moment).filter(
            Q(created_at__gt=moment) | Q(pk__gt=pk)
        )
        newer = within_reach(newer, webhooks, size, newest_first=False)
        rows = list(newer.order_by("created_at", "pk")[: size + 1])
        if len(rows) <= size:  # back at the top: the newest page, whole
            return page_of(deliveries, size=size, webhooks=webhooks)
        rows = rows[:size][::-1]
        return Page(
            rows,
            newer=encode_cursor(rows[0]),
            older=encode_cursor(rows[-1]),
        )
    if after is not None:
        moment, pk = after
        deliveries = deliveries.filter(created_at__lte=moment).filter(
            Q(created_at__lt=moment) | Q(pk__lt=pk)
        )
    deliveries = within_reach(deliveries, webhooks, size, newest_first=True)
    rows = list(deliveries.order_by("-created_at", "-pk")[: size + 1])
    more_older = len(rows) > size
    rows = rows[:size]
    return Page(
        rows,
        newer=encode_cursor(rows[0]) if rows and after is not None else None,
        older=encode_cursor(rows[-1]) if more_older else None,
    )


#: The most webhooks ``within_reach`` bounds one by one (see there).
MAX_REACHED_WEBHOOKS = 20

#: Bounds that cut nothing off, for a webhook with fewer rows than a page.
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def within_reach(deliveries, webhooks, size: int, *, newest_first: bool):
    """``deliveries`` (of several ``webhooks``) cut to the rows a page of ``size + 1`` can
    reach, without changing which rows it shows.

    Ordering the rows of several webhooks by time is a sort of all of them on SQLite (it
    cannot merge the index ranges of ``subscription_id IN (…)``): 100,000 rows for one page.
    But each webhook's ``(size + 1)``-th row in page order is found in its own index range
    (``webhooks_delivery_health``) at once, and the page's rows are all at or before the
    latest of those positions: that webhook alone has ``size + 1`` rows up to there. So
    the page is read from at most ``size + 1`` rows per webhook, in the same one query."""
    webhooks = list(webhooks)
    # One webhook's rows come in order from its index already. Past MAX_REACHED_WEBHOOKS,
    # the plain sort: each bound repeats the query's filters (its ``IN`` list of webhooks
    # too), so the statement grows with the square of the webhooks.
    if not 2 <= len(webhooks) <= MAX_REACHED_WEBHOOKS:
        return deliveries
    order, reach = ("-created_at", "gte") if newest_first else ("created_at", "lte")
    unbounded = _EARLIEST if newest_first else _LATEST
    bounded = deliveries
    for webhook in webhooks:
        nth = (
            deliveries.filter(subscription_id=webhook)
            .order_by(order)
            .values("created_at")[size : size + 1]
        )
        edge = Coalesce(Subquery(nth), Value(unbounded), output_field=DateTimeField())
        bounded = bounded.filter(**{f"created_at__{reach}": edge})
    return bounded


def event_type_names() -> list[str]:
    # The (small) EventType table, not a DISTINCT over every event.
    return list(EventType.objects.order_by("name").values_list("name", flat=True))
