from django.apps import AppConfig


class DemoReceiverConfig(AppConfig):
    name = "example_project.demo_receiver"
    label = "demo_receiver"
    default_auto_field = "django.db.models.BigAutoField"
