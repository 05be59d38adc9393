from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def webhooks_breadcrumbs(context) -> list[dict]:
    """Wagtail's slim header's breadcrumbs: Home › Webhooks (the portal's own nav follows)."""
    request = context["request"]
    return [
        {"url": reverse("wagtailadmin_home"), "label": "Home"},
        {
            "url": reverse(
                "webhooks_portal:webhooks", current_app=request.resolver_match.namespace
            ),
            "label": "Webhooks",
        },
    ]
