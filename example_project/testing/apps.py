from django.apps import AppConfig


class TestingConfig(AppConfig):
    name = "example_project.testing"
    label = "testing"
    default_auto_field = "django.db.models.BigAutoField"
