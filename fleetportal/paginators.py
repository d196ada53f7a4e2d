"""A changelist paginator that never counts a whole large table.

Django's admin runs `SELECT COUNT(*)` over the filtered queryset on every page view; on a million
rows that alone takes longer than the rest of the page. This paginator counts exactly only up to
settings.LIST_EXACT_COUNT_LIMIT and past that asks PostgreSQL's planner for its estimate, which
costs a catalog lookup or an EXPLAIN. Templates show such counts as "about N".
"""

import json

from django.conf import settings
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Exact counts for small results, the planner's estimate (marked approximate) past them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.count_is_approximate = False

    @cached_property
    def count(self) -> int:
        count, self.count_is_approximate = capped_count(self.object_list)
        return count

    def page(self, number):
        if not self.count_is_approximate:
            return super().page(number)
        # Past an estimate the last page's end is unknown: always ask for a full page.
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)

    def get_elided_page_range(self, number=1, *, on_each_side=3, on_ends=2):
        """Leave out the last pages when the count is estimated: their position is a guess and
        reaching them means an OFFSET over the whole table."""
        if not self.count_is_approximate:
            yield from super().get_elided_page_range(
                number, on_each_side=on_each_side, on_ends=on_ends
            )
            return
        number = self.validate_number(number)
        window_start = max(number - on_each_side, 1)
        if window_start > on_ends + 1:
            yield from range(1, on_ends + 1)
            yield self.ELLIPSIS
        else:
            window_start = 1
        yield from range(window_start, min(number + on_each_side, self.num_pages) + 1)
        if number + on_each_side < self.num_pages:
            yield self.ELLIPSIS


def capped_count(queryset) -> tuple[int, bool]:
    """(count, is_approximate): exact up to settings.LIST_EXACT_COUNT_LIMIT, else estimated."""
    limit = settings.LIST_EXACT_COUNT_LIMIT
    # Without ORDER BY the database may stop scanning as soon as it has limit + 1 rows.
    queryset = queryset.order_by()
    exact = queryset.values("pk")[: limit + 1].count()
    if exact <= limit:
        return exact, False
    # The estimate can undershoot a selective filter; we know there are more than `limit`.
    return max(estimate_count(queryset), limit + 1), True


def estimate_count(queryset) -> int:
    """The planner's row estimate: pg_class.reltuples for a whole table, else EXPLAIN's."""
    connection = connections[queryset.db]
    with connection.cursor() as cursor:
        if not queryset.query.where:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
            # -1 means the table was never analyzed; the planner still has an estimate.
            if row and row[0] >= 0:
                return row[0]
        sql, params = queryset.query.sql_with_params()
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
