"""``path("api/webhooks/", include("webhooks.api.urls"))``."""

from rest_framework.routers import DefaultRouter

from . import views

app_name = "webhooks-api"

router = DefaultRouter()
router.register("event-types", views.EventTypeViewSet, basename="event-type")
router.register("subscriptions", views.SubscriptionViewSet, basename="subscription")
router.register("deliveries", views.DeliveryViewSet, basename="delivery")
router.register("events", views.EventViewSet, basename="event")

urlpatterns = router.urls
