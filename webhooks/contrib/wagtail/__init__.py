"""Webhooks in Wagtail's admin: ``INSTALLED_APPS += ["webhooks.contrib.wagtail"]``.

* "Webhooks" under Wagtail's Settings menu: the customer portal's pages (webhooks, the
  deliveries log, the event catalogue) in Wagtail's layout, for the site's own webhooks
  (``access.wagtail_access`` says whose);
* this app's permissions in Wagtail's group editor, so a "Webhook managers" group can be
  made there;
* Wagtail's Administrators (superusers, whom Wagtail does not make staff) may use the
  Django admin too, as they may the API (``django_admin``).

See docs/wagtail.md.
"""
