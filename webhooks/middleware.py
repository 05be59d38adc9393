"""``ATOMIC_REQUESTS`` for the requests that change things only.

With ``ATOMIC_REQUESTS`` every request is a transaction; on SQLite with
``transaction_mode: IMMEDIATE`` (what a save beside a webhook worker needs, check E011)
every transaction takes the write lock at ``BEGIN``, so a page view waits for any other
process's write. This middleware runs the view of a POST, PUT, PATCH or DELETE in a
transaction, as ``ATOMIC_REQUESTS`` would, and leaves GET, HEAD, OPTIONS and TRACE in
autocommit: reads never wait for the write lock, and a save and its events still commit
together. Use it instead of ``ATOMIC_REQUESTS`` (check W006).

Like ``ATOMIC_REQUESTS``: the view runs in ``transaction.atomic()`` on every database
whose ``ATOMIC_REQUESTS`` is not already on, an exception rolls it back, a view marked
``@transaction.non_atomic_requests`` is left alone, and an async view is not wrapped (run
its writes in ``transaction.atomic()`` yourself).
"""

from __future__ import annotations

from contextlib import ExitStack

from asgiref.sync import iscoroutinefunction
from django.db import connections, transaction

#: The methods that only read (RFC 9110's safe methods): no transaction for them.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class AtomicUnsafeRequestsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method in SAFE_METHODS or iscoroutinefunction(view_func):
            return None
        left_alone = getattr(view_func, "_non_atomic_requests", set())
        aliases = [
            alias
            for alias, settings_dict in connections.settings.items()
            if not settings_dict.get("ATOMIC_REQUESTS") and alias not in left_alone
        ]
        if not aliases:
            return None
        with ExitStack() as stack:
            for alias in aliases:
                stack.enter_context(transaction.atomic(using=alias))
            response = view_func(request, *view_args, **view_kwargs)
        if response is None:  # Django would call the view a second time
            raise ValueError(
                f"The view {view_func.__module__}.{getattr(view_func, '__qualname__', view_func)} "
                "didn't return an HttpResponse object. It returned None instead."
            )
        return response
