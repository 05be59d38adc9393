"""Admin lists over tables that grow without bound (deliveries, webhooks): counted only up
to a bound, so a page never costs a count(*) over millions of rows.

Django's admin counts the filtered rows of every list page to number its pages: at 10M
attempts that count alone is most of a second for a big tenant's staff. Past
``COUNT_AT_MOST`` rows the list says "more than 10,000" and numbers 200 pages; the filters,
the search and the date links reach the rest.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

#: Rows counted at most; the pages past them are not numbered.
COUNT_AT_MOST = 10_000


class BoundedPaginator(Paginator):
    """Counts ``COUNT(*)`` over ``LIMIT COUNT_AT_MOST + 1`` rows: a read of at most that many
    index entries, whatever the size of the table."""

    bound = COUNT_AT_MOST

    @cached_property
    def counted(self) -> int:
        return self.object_list.order_by()[: self.bound + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self.counted, self.bound)

    @property
    def capped(self) -> bool:
        """Whether there are more rows than counted (the page says "more than …")."""
        return self.counted > self.bound
