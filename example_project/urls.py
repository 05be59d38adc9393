from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.db.transaction import non_atomic_requests
from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<circle cx="8" cy="8" r="7" fill="#417690"/></svg>'
)


def favicon(request):
    """Browsers ask for it on every page: answer rather than log a 404 each time."""
    return HttpResponse(FAVICON, content_type="image/svg+xml")


urlpatterns = [
    path("favicon.ico", non_atomic_requests(favicon)),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("demo-receiver/", include("example_project.demo_receiver.urls")),
    path("api/webhooks/", include("webhooks.api.urls")),
    # The customers' sign-in (registration/login.html in the platform's layout).
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The customers' own "Settings > Integrations > Webhooks" page: the portal.
    path("settings/integrations/webhooks/", include("webhooks.portal.urls")),
    path("metrics/", include("webhooks.metrics.urls")),  # Prometheus, behind a token
    # For load balancers (this node) and uptime monitors (platform/): see docs/operators.md.
    path("health/webhooks/", include("webhooks.health_urls")),
    # The schema and its docs page read no data: no transaction (ATOMIC_REQUESTS) for them.
    path("api/schema/", non_atomic_requests(SpectacularAPIView.as_view()), name="schema"),
    path(
        "api/docs/",
        non_atomic_requests(SpectacularSwaggerView.as_view(url_name="schema")),
        name="api-docs",
    ),
]
