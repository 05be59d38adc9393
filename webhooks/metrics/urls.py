"""``path("metrics/", include("webhooks.metrics.urls"))`` in the host's URLconf."""

from django.urls import path

from .views import metrics_view

app_name = "webhooks_metrics"
urlpatterns = [path("", metrics_view, name="metrics")]
