"""Optimal assignment (the Hungarian / Munkres method) of rows to columns by cost.

Album folders are matched to tracklists with it: rows are tracklist entries, columns the
folder's files, and the cost of a pair says how unlike they are. A greedy first match can
give a file to the wrong track and leave the right one without; this cannot. O(n² m) for
n rows and m columns, in pure Python — a folder of a few dozen files takes milliseconds,
which is why SoulSync does not depend on scipy for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def assign(cost: Sequence[Sequence[float]]) -> list[int | None]:
    """Return, for each row, the column assigned to it (None: no column left for that row).

    ``cost`` is a rectangular matrix (rows x columns) of finite numbers; the assignment
    minimises the sum of the chosen costs, each column used at most once. With more rows
    than columns, the rows left over get None.
    """
    rows = len(cost)
    cols = len(cost[0]) if rows else 0
    if rows == 0 or cols == 0:
        return [None] * rows
    if rows > cols:
        transposed = [[cost[r][c] for r in range(rows)] for c in range(cols)]
        by_col = assign(transposed)
        result: list[int | None] = [None] * rows
        for col, row in enumerate(by_col):
            if row is not None:
                result[row] = col
        return result
    # The shortest augmenting path form (rows <= cols), 1-based with a virtual column 0.
    u = [0.0] * (rows + 1)
    v = [0.0] * (cols + 1)
    owner = [0] * (cols + 1)   # owner[c]: the row holding column c (0: none)
    way = [0] * (cols + 1)
    for row in range(1, rows + 1):
        owner[0] = row
        col0 = 0
        minv = [math.inf] * (cols + 1)
        used = [False] * (cols + 1)
        while True:
            used[col0] = True
            row0 = owner[col0]
            delta = math.inf
            col1 = 0
            for col in range(1, cols + 1):
                if used[col]:
                    continue
                reduced = cost[row0 - 1][col - 1] - u[row0] - v[col]
                if reduced < minv[col]:
                    minv[col] = reduced
                    way[col] = col0
                if minv[col] < delta:
                    delta = minv[col]
                    col1 = col
            for col in range(cols + 1):
                if used[col]:
                    u[owner[col]] += delta
                    v[col] -= delta
                else:
                    minv[col] -= delta
            col0 = col1
            if owner[col0] == 0:
                break
        while col0:
            col1 = way[col0]
            owner[col0] = owner[col1]
            col0 = col1
    assigned: list[int | None] = [None] * rows
    for col in range(1, cols + 1):
        if owner[col]:
            assigned[owner[col] - 1] = col - 1
    return assigned
