"""The customer portal: "Settings > Integrations > Webhooks" inside the host's own pages.

A host includes ``webhooks.portal.urls`` under its settings page; the pages render inside
``WEBHOOKS_PORTAL_BASE_TEMPLATE`` (the host's base template) and show one customer's
(one scope's) webhooks. Who may open them: ``webhooks.portal.access``.
"""

__all__ = ["magic_link"]


def __getattr__(name: str):
    # ``webhooks.portal.magic_link``, imported on first use: importing this package (a
    # host's settings or URLconf may) loads no models.
    if name == "magic_link":
        from .magic import magic_link

        return magic_link
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
