"""The API's views. Each queryset is the caller's tenant only, so the objects of another
tenant are a 404 — the same answer as for an object that does not exist."""

from __future__ import annotations

from django.db import transaction
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from .. import actions, plans, stats, tenancy
from ..conf import conf
from ..exceptions import DeliveryBusy
from ..forms import RotateSecretForm
from ..models import Delivery, Event, EventType, Subscription
from . import serializers as s
from .filters import DeliveryFilter, EventFilter
from .pagination import EventCursorPagination, NewestFirstCursorPagination, PagePagination
from .permissions import ConfiguredPermissionsMixin
from .schema import WebhooksAutoSchema


def _delivery_location(request, delivery) -> str:
    """Where to read a delivery started in the background: its attempts appear there."""
    return request.build_absolute_uri(reverse("webhooks-api:delivery-detail", args=[delivery.pk]))


PLAN_REFUSED = (
    "Your organisation's plan does not include webhooks: nothing can be read or changed "
    "here until it does."
)

CONFLICT = OpenApiResponse(description="The delivery is being sent right now; try again shortly.")


class BaseViewSet(ConfiguredPermissionsMixin, viewsets.GenericViewSet):
    # Tenant-restricted: ``scope_field`` is the path from the model to its tenant.
    scope_field = "scope"
    # Whose model permissions let a caller in (WebhooksModelPermissions): none by default.
    permission_models: tuple = ()
    parser_classes = [JSONParser]  # an API for programs: JSON in, JSON out
    schema = WebhooksAutoSchema()
    # Any path segment reaches the view, so a malformed id is a JSON 404 like any other.
    lookup_value_regex = r"[^/]+"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # signed in, and allowed the action
        # The plan gate: a customer whose plan has no webhooks is told so, whatever it asks.
        self.caller_scope = tenancy.scope_for_user(request.user)
        if isinstance(self.caller_scope, str) and not plans.allows(self.caller_scope):
            raise PermissionDenied(PLAN_REFUSED)

    def restrict(self, queryset):
        scope = getattr(self, "caller_scope", None)
        if not hasattr(self, "caller_scope"):  # called outside a request's handling
            scope = tenancy.scope_for_user(self.request.user)
        return tenancy.restrict_to(queryset, scope, self.scope_field)


@extend_schema_view(
    list=extend_schema(summary="List the event types a webhook can subscribe to"),
    retrieve=extend_schema(summary="One event type, with an example payload"),
)
class EventTypeViewSet(BaseViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """The kinds of event this platform sends."""

    # The catalogue is for whoever may look at event types or at webhooks.
    permission_models = (EventType, Subscription)

    serializer_class = s.EventTypeSerializer
    queryset = EventType.objects.filter(is_active=True)
    lookup_field = "name"
    pagination_class = None  # a short catalogue


@extend_schema_view(
    list=extend_schema(summary="List webhooks"),
    retrieve=extend_schema(summary="One webhook"),
    create=extend_schema(
        summary="Add a webhook",
        description="The answer carries the signing secret: the only time it is shown.",
        responses={201: s.SubscriptionCreatedSerializer},
    ),
    update=extend_schema(summary="Replace a webhook's settings"),
    partial_update=extend_schema(summary="Change some of a webhook's settings"),
    destroy=extend_schema(summary="Delete a webhook and its delivery log"),
)
class SubscriptionViewSet(
    BaseViewSet,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
):
    """Webhooks: where to send which events. Yours only."""

    permission_models = (Subscription,)
    action_permissions = {
        "ping": "change",
        "rotate_secret": "change",
        "recover": "change",
        "stats": "view",
    }

    serializer_class = s.SubscriptionSerializer
    pagination_class = PagePagination

    def get_queryset(self):
        return self.restrict(Subscription.objects.prefetch_related("event_types"))

    def get_serializer_class(self):
        if self.action == "create":
            return s.SubscriptionCreatedSerializer
        return super().get_serializer_class()

    def create(self, request, *args, **kwargs):
        if tenancy.scope_for_user(request.user) is tenancy.NO_SCOPE:
            raise PermissionDenied("You have no account whose webhooks you may manage.")
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save()

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()

    @extend_schema(
        summary="Send a test event to this webhook (in the background)",
        description='A `webhook.test` event, or with `{"event_type": "…"}` the example '
        "payload of a type this webhook receives, goes through the normal path (signing, "
        "logging). It is sent after this request: the answer (202) is the delivery, and its "
        "`Location` the delivery to read for the attempt's outcome.",
        request=None,
        responses={202: s.DeliveryDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        subscription = self.get_object()
        type_name = request.data.get("event_type") if isinstance(request.data, dict) else None
        if type_name and type_name not in actions.example_types(subscription):
            return Response(
                {"event_type": [f"This webhook does not receive {type_name!r} events."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        delivery = actions.send_example(subscription, type_name or "")
        delivery = Delivery.objects.prefetch_related("attempts").get(pk=delivery.pk)
        return Response(
            s.DeliveryDetailSerializer(delivery).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": _delivery_location(request, delivery)},
        )

    @extend_schema(
        summary="Replace the signing secret",
        description="The new secret is shown once. The old one keeps signing, next to the "
        "new, until previous_secret_expires_at: for `overlap` seconds (0, 3600, 86400 or "
        "604800; default WEBHOOKS_SECRET_ROTATION_OVERLAP, 24 hours).",
        request=s.RotateSecretRequestSerializer,
        responses={200: s.RotatedSecretSerializer},
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        subscription = self.get_object()
        # The admin's choices and words: none, 1 hour, 24 hours or 7 days (in seconds).
        data = request.data if isinstance(request.data, dict) else {}
        form = RotateSecretForm(
            {"overlap": data.get("overlap", "")}, default=conf.SECRET_ROTATION_OVERLAP
        )
        if not form.is_valid():
            return Response({"overlap": form.errors["overlap"]}, status=400)
        secret = actions.rotate_secret(subscription, overlap=form.cleaned_data["overlap"])
        data = {
            "secret": secret,
            "previous_secret_expires_at": subscription.previous_secret_expires_at,
        }
        return Response(s.RotatedSecretSerializer(data).data)

    @extend_schema(
        summary="This webhook's figures: success rates, latency, backlog, last success",
        description="Computed as the admin's webhook pages compute them (one definition, "
        "`webhooks.stats`). Success rate: the share of the delivery attempts made in the "
        "window that succeeded; null when no attempt was made.",
        responses={200: s.WebhookStatsSerializer},
    )
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        subscription = self.get_object()  # the caller's tenant only: another's is a 404
        figures = stats.endpoint(subscription).as_dict()
        return Response(s.WebhookStatsSerializer(figures).data)

    @extend_schema(
        summary="Resend the failed deliveries of a time window",
        request=s.RecoverSerializer,
        responses={202: s.RecoveredSerializer},
    )
    @action(detail=True, methods=["post"])
    def recover(self, request, pk=None):
        subscription = self.get_object()
        window = s.RecoverSerializer(data=request.data)
        window.is_valid(raise_exception=True)
        count = actions.recover(
            subscription, window.validated_data["since"], window.validated_data.get("until")
        )
        return Response(s.RecoveredSerializer({"queued": count}).data, status=202)


@extend_schema_view(
    list=extend_schema(summary="List deliveries, newest first"),
    retrieve=extend_schema(summary="One delivery, with every attempt"),
)
class DeliveryViewSet(BaseViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """One event owed to one webhook, and every attempt to send it."""

    permission_models = (Delivery,)
    action_permissions = {"resend": "change"}  # as the admin's "resend" action

    scope_field = "subscription__scope"
    pagination_class = NewestFirstCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeliveryFilter

    def get_queryset(self):
        # Only deliveries whose webhook still exists: a deleted webhook's log is deleted in
        # the background (``webhooks.removal``). The join is a key lookup per row listed.
        queryset = Delivery.objects.filter(subscription__created_at__isnull=False)
        queryset = queryset.select_related("event")
        if self.action != "list":
            queryset = queryset.prefetch_related("attempts")
        return self.restrict(queryset)

    def get_serializer_class(self):
        if self.action == "list":
            return s.DeliverySerializer
        return s.DeliveryDetailSerializer

    @extend_schema(
        summary="Send this delivery again now (same webhook-id)",
        request=None,
        responses={202: s.DeliveryDetailSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        delivery = self.get_object()
        try:
            actions.resend_one(delivery)
        except DeliveryBusy as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        delivery = self.get_queryset().get(pk=delivery.pk)
        return Response(
            s.DeliveryDetailSerializer(delivery).data,
            status=202,
            headers={"Location": _delivery_location(request, delivery)},
        )


@extend_schema_view(
    list=extend_schema(summary="List events, newest first, matched by a webhook or not"),
    retrieve=extend_schema(summary="One event and its payload"),
)
class EventViewSet(BaseViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """What happened in your account, whether or not a webhook wanted it."""

    permission_models = (Event,)

    serializer_class = s.EventSerializer
    pagination_class = EventCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilter

    def get_queryset(self):
        return self.restrict(Event.objects.all())
