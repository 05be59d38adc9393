from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, pre_delete
from django.utils.module_loading import autodiscover_modules


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registration only: no database access here (it runs before migrate).
        from django_q.signals import post_spawn  # imports django_q's models: not before ready

        from . import (
            checks,  # noqa: F401  (registers the system checks)
            health_hours,
            notifications,  # noqa: F401  (connects the owner notices to the signals)
            removal,
        )
        from .builtin_events import declare_builtin_events
        from .warmup import warm_worker

        declare_builtin_events()
        autodiscover_modules("webhook_events")
        post_migrate.connect(_after_migrate, sender=self, dispatch_uid="webhooks.after_migrate")
        post_spawn.connect(warm_worker, dispatch_uid="webhooks.warm_worker")
        pre_delete.connect(
            health_hours.delivery_deleted,
            sender="webhooks.Delivery",
            dispatch_uid="webhooks.health_hours",
        )
        # However a webhook is deleted (the admin, the API, a cascade, the shell), its log
        # is left to delete after it (no database constraint deletes it).
        post_delete.connect(
            removal.webhook_deleted,
            sender="webhooks.Subscription",
            dispatch_uid="webhooks.removal",
        )


def _after_migrate(using="default", **kwargs) -> None:
    from django.db import connections
    from django_q.models import Schedule

    from .registry import sync_event_types
    from .retention import ensure_schedule as ensure_purge_schedule
    from .sweeper import ensure_schedule

    sync_event_types(using=using)
    # ``migrate webhooks 0015`` on a new database migrates this app and its dependencies
    # only: django-q2's tables come with a later migrate, whose post_migrate adds these.
    if Schedule._meta.db_table in connections[using].introspection.table_names():
        ensure_schedule()
        ensure_purge_schedule()
