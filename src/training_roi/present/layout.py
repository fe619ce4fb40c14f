"""Fitting tables to the terminal: a figure is never cut, at any width.

Rich narrows a table that is wider than the terminal by shrinking its widest columns and, as a
last resort, every column evenly, cutting what no longer fits ("339,2…"). Here each column gets
at least its longest word (a number, a date, an amount), the rest of the width going to the
columns that can wrap; and when even that is wider than the terminal the table is shown as a list
instead, one block per row, each value on its own line under its column's name.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Column, Table
from rich.text import Text

__all__ = ["fits", "fitted"]


def _measure(console: Console, options: ConsoleOptions, cell: RenderableType) -> Measurement:
    renderable = console.render_str(cell) if isinstance(cell, str) else cell
    return Measurement.get(console, options, renderable)


def _needs(console: Console, options: ConsoleOptions, column: Column) -> tuple[int, int]:
    """The column's narrowest width that cuts no word, and its natural width (padding excluded)."""
    low, high = 1, 1
    for cell in (column.header, *column.cells):
        m = _measure(console, options, cell)
        low, high = max(low, m.minimum), max(high, m.maximum)
    return (high, high) if column.no_wrap else (low, high)


def _room(table: Table, width: int) -> int:
    """The width left for the columns' contents once borders and padding are taken."""
    n = len(table.columns)
    borders = (2 if table.show_edge else 0) + (n - 1) if table.box else 0
    _, right, _, left = table.padding
    padding = n * (left + right)
    if table.pad_edge is False and n:
        padding -= left + right
    return width - borders - padding


def fits(table: Table, width: int) -> bool:
    """Whether ``table`` can be drawn ``width`` columns wide without cutting a word."""
    console = Console(width=max(width, 1))
    options = console.options.update_width(max(width, 1))
    return sum(_needs(console, options, c)[0] for c in table.columns) <= _room(table, width)


def fitted(renderable: RenderableType, width: int) -> RenderableType:
    """``renderable`` laid out for ``width`` columns, no figure cut; groups and panels are fitted part by part."""
    if isinstance(renderable, Group):
        return Group(*(fitted(r, width) for r in renderable.renderables))
    if isinstance(renderable, Panel):
        _, right, _, left = Padding.unpack(renderable.padding)
        inner = fitted(renderable.renderable, width - 2 - left - right)
        return Panel(inner, title=renderable.title, title_align=renderable.title_align, box=renderable.box,
                     border_style=renderable.border_style, padding=renderable.padding, expand=renderable.expand)
    if not isinstance(renderable, Table) or not renderable.columns:
        return renderable
    return _fit_table(renderable, width)


def _fit_table(table: Table, width: int) -> RenderableType:
    console = Console(width=max(width, 1))
    options = console.options.update_width(max(width, 1))
    needs = [_needs(console, options, c) for c in table.columns]
    room = _room(table, width)
    if sum(high for _, high in needs) <= room:
        return table
    if sum(low for low, _ in needs) > room:
        return _as_list(table)
    # Every column its longest word; what is left shared by the columns that wrap, in proportion
    # to how much more they would take.
    widths = [low for low, _ in needs]
    spare = room - sum(widths)
    wants = [high - low for low, high in needs]
    total = sum(wants)
    for i, want in enumerate(wants):
        widths[i] += spare * want // total if total else 0
    for column, w in zip(table.columns, widths, strict=True):
        column.width = w
        column.overflow = "fold"
    return table


def _plain(cell: RenderableType) -> RenderableType:
    return cell if not isinstance(cell, str) else Text.from_markup(cell)


def _as_list(table: Table) -> Group:
    """The table as one block per row: the row's first cell, then each other column's name and value."""
    columns: Sequence[Column] = table.columns
    cells = [list(c.cells) for c in columns]
    parts: list[RenderableType] = []
    if table.title:
        parts.append(Text.from_markup(table.title, style="italic") if isinstance(table.title, str) else table.title)
    for r in range(table.row_count):
        block = Table.grid(padding=(0, 1))
        block.add_column(style="dim")
        block.add_column(overflow="fold")
        for c, column in enumerate(columns[1:], start=1):
            value = cells[c][r]
            if isinstance(value, str) and not value.strip():
                continue
            block.add_row(_plain(column.header), _plain(value))
        head = Table.grid(padding=(0, 1))
        head.add_column(no_wrap=True)
        head.add_column(style="bold")
        head.add_row("•", _plain(cells[0][r]))
        parts.append(Group(head, block))
    if table.caption:
        parts.append(Text.from_markup(table.caption, style="dim") if isinstance(table.caption, str) else table.caption)
    return Group(*parts)
