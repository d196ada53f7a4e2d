from rest_framework.pagination import CursorPagination, PageNumberPagination


class FleetPageNumberPagination(PageNumberPagination):
    """For small collections (groups); fleet-sized ones use FleetCursorPagination."""

    page_size_query_param = "page_size"
    max_page_size = 500


class FleetCursorPagination(CursorPagination):
    """Keyset pagination: page 10,000 costs the same as page 1 and never counts the table."""

    ordering = "-created_at"
    page_size_query_param = "page_size"
    max_page_size = 500
