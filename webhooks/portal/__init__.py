"""The customer portal: "Settings > Integrations > Webhooks" inside the host's own pages.

A host includes ``webhooks.portal.urls`` under its settings page; the pages render inside
``WEBHOOKS_PORTAL_BASE_TEMPLATE`` (the host's base template) and show one customer's
(one scope's) webhooks. Who may open them: ``webhooks.portal.access``.
"""
