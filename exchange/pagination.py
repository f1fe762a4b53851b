"""Cursor pagination that refuses what DRF's would crash on or silently ignore.

DRF decodes a cursor's position without checking it against the ordering column, so a cursor
like ``p=abc`` reached the database as a malformed integer or timestamp (a 500); and its ``limit``
fell back to the default page size on anything ``int()`` refused, while ``int()`` itself took
``"1_0"`` and non-ASCII digits. Here a position that is not a valid value of the ordering column
is an invalid cursor (404 ``not_found``, as DRF answers for one that does not decode), and
``limit`` follows the numeric grammar of :mod:`exchange.money` (400 ``invalid_number``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from rest_framework import pagination
from rest_framework.exceptions import NotFound

from exchange.errors import ValidationFailed
from exchange.money import NumberError, parse_whole


class CursorPagination(pagination.CursorPagination):
    page_size_query_param = "limit"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):  # type: ignore[no-untyped-def]
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):  # type: ignore[no-untyped-def]
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        try:
            field = self._model._meta.get_field(ordering.lstrip("-"))
            # clean(): the column's type and range (an int beyond bigint is a DataError too).
            field.clean(cursor.position, None)
        except (FieldDoesNotExist, ValidationError, TypeError, ValueError):
            raise NotFound(self.invalid_cursor_message) from None
        return cursor

    def get_page_size(self, request) -> int:  # type: ignore[no-untyped-def]
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        try:
            return parse_whole(value, minimum=1, maximum=self.max_page_size)
        except NumberError as exc:
            raise ValidationFailed(
                f"limit: {exc}", code="invalid_number", extra={"field": "limit"}
            ) from None

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {
                    "type": "integer", "minimum": 1, "maximum": self.max_page_size,
                }  # fmt: skip
        return parameters
