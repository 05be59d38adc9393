from django.contrib import admin
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

# As Wagtail's project template lays them out, plus the webhooks API and the customers'
# portal (mounted too, so the tests show each mount's pages link within that mount).
urlpatterns = [
    path("settings/webhooks/", include("webhooks.portal.urls")),
    path("django-admin/", admin.site.urls),
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    path("api/webhooks/", include("webhooks.api.urls")),
    path("", include(wagtail_urls)),
]
