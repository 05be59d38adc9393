from django.apps import AppConfig


class AuthoringConfig(AppConfig):
    name = "example_project.authoring"
    label = "authoring"
    default_auto_field = "django.db.models.BigAutoField"
