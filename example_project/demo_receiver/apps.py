from django.apps import AppConfig


class DemoReceiverConfig(AppConfig):
    name = "example_project.demo_receiver"
    label = "demo_receiver"
    verbose_name = "Demo receiver"
    default_auto_field = "django.db.models.BigAutoField"
