"""The one pagination helper: clamp ``page``/``limit`` and build the ``pagination`` object."""

from __future__ import annotations

import math

import msgspec


class Pagination(msgspec.Struct):
    page: int
    limit: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool


class Page(msgspec.Struct, frozen=True):
    """A clamped page request; ``offset`` is the first row of the page."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def pagination(self, total: int) -> Pagination:
        """Return the pagination object for ``total`` matching rows (``total_pages`` >= 1)."""
        total_pages = max(1, math.ceil(total / self.limit))
        return Pagination(self.page, self.limit, total, total_pages,
                          self.page < total_pages, self.page > 1)


# Pages past this are as empty as any page past the last one; the cap keeps the offset a
# 64-bit SQLite integer whatever ``page`` a client sends.
MAX_PAGE = 2**31 - 1


def clamp_page(page: int, limit: int, max_limit: int = 200) -> Page:
    """Clamp ``page`` to 1..:data:`MAX_PAGE` and ``limit`` to 1..``max_limit`` (the spec clamps,
    never rejects)."""
    return Page(min(max(1, page), MAX_PAGE), min(max(1, limit), max_limit))
