from django.apps import AppConfig


class WagtailWebhooksConfig(AppConfig):
    name = "webhooks.contrib.wagtail"
    label = "webhooks_wagtail"
    verbose_name = "Webhooks in Wagtail"

    def ready(self):
        from django.contrib import admin

        from .django_admin import admit_wagtail_administrators

        admit_wagtail_administrators(admin.site)
