"""How the list endpoints page. A cursor is opaque to clients: one that was changed is a 400."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination

TAMPERED = "This cursor is not one the API gave out; start again from the first page."


class PagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class NewestFirstCursorPagination(CursorPagination):
    """Stable pages over a table that grows while it is read."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # Rows of one fan-out can share a timestamp: the id orders equals, so each page's
    # query sees them in the same order and the cursor's offset never repeats or skips one.
    ordering = ("-created_at", "-id")

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:  # DRF's answer for an undecodable cursor: it is the client's input
            raise ValidationError({self.cursor_query_param: [TAMPERED]}) from None

    def paginate_queryset(self, queryset, request, view=None):
        # A well-formed cursor whose position is not a date-time reaches the database
        # query; its refusal is the client's error too, not a 500.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise ValidationError({self.cursor_query_param: [TAMPERED]}) from None


class EventCursorPagination(NewestFirstCursorPagination):
    ordering = ("-occurred_at", "-id")
