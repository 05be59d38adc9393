"""The REST API: what an admin does in the configurator, for a customer's programs.

Mount it with ``path("api/webhooks/", include("webhooks.api.urls"))``. Every
queryset is limited to the caller's tenant (``webhooks.tenancy.restrict``), so
another tenant's objects answer 404, exactly like objects that do not exist.
"""
