"""The example's URLs, with one more portal page for the tests: one that needs ``can_change``."""

from django.http import HttpResponse
from django.urls import include, path

from example_project.urls import urlpatterns as example_urlpatterns
from webhooks.portal import urls as portal_urls
from webhooks.portal.views import PortalView


class ChangeProbe(PortalView):
    """Stands in for the portal's pages that change something (add, edit, rotate…)."""

    change_required = True

    def get(self, request):
        return HttpResponse(f"may change {self.access.scope}")


portal = (
    [*portal_urls.urlpatterns, path("probe-change/", ChangeProbe.as_view(), name="probe-change")],
    "webhooks_portal",
)
urlpatterns = [
    path("settings/integrations/webhooks/", include(portal)),
    *(p for p in example_urlpatterns if getattr(p, "namespace", None) != "webhooks_portal"),
]
