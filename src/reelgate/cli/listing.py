"""Tables that fit the terminal: ids, times and statuses are shown whole (never cut to ``c…``), free text folds, and
when the terminal is too narrow for every column the least useful ones are left out, in an order each table states.

An id is what a user copies into the next command, so a table that cuts one is worse than one that shows fewer
columns. ``fitted`` measures what the whole columns need, adds the narrowest useful width of each folding column and
the table's borders, and leaves out droppable columns (``drop=1`` first, then 2, ...) until that fits ``width``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.table import Column, Table

Cell = str


@dataclass(frozen=True)
class Col:
    """One column: ``whole`` values (ids, times, statuses) stay on one line and are never cut; others fold at
    ``least`` characters at the narrowest. ``drop`` > 0 lets the column be left out on a narrow terminal."""

    header: str
    whole: bool = False
    least: int = 10
    drop: int = 0

    def column(self) -> Column:
        if self.whole:
            return Column(self.header, no_wrap=True)
        return Column(self.header, overflow="fold")


def _overhead(columns: int, boxed: bool) -> int:
    # boxed: "│ a │ b │" (a bar and a space either side of each cell); plain: two spaces between columns
    return 3 * columns + 1 if boxed else 2 * (columns - 1)


def _needed(cols: Sequence[Col], rows: Sequence[Sequence[Cell]], keep: Sequence[int], boxed: bool) -> int:
    total = _overhead(len(keep), boxed)
    for i in keep:
        natural = max([cell_len(cols[i].header), *(cell_len(row[i]) for row in rows)])
        total += natural if cols[i].whole else min(natural, cols[i].least)
    return total


def _kept(cols: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int, boxed: bool) -> list[int]:
    keep = list(range(len(cols)))
    for victim in sorted((i for i, c in enumerate(cols) if c.drop), key=lambda i: cols[i].drop):
        if _needed(cols, rows, keep, boxed) <= width:
            break
        keep.remove(victim)
    return keep


def fits(cols: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int, *, boxed: bool = False) -> bool:
    """Whether every column fits ``width`` with its whole values whole (for a table with another narrow layout)."""
    return _needed(cols, rows, range(len(cols)), boxed) <= width


def fitted(cols: Sequence[Col], rows: Sequence[Sequence[Cell]], width: int, *, boxed: bool = False) -> Table:
    """The table for a terminal ``width`` wide: plain (a rule under the header, two spaces between columns) or
    boxed, without the droppable columns that do not fit."""
    keep = _kept(cols, rows, width, boxed)
    columns = [cols[i].column() for i in keep]
    if boxed:
        table = Table(*columns)
    else:
        table = Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table
