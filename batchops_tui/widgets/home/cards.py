"""Home widgets: a KPI tile, a titled list card, and the runs-per-hour chart."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline, Static


class Kpi(Vertical):
    """One figure with its caption; `update()` sets the value and an optional detail line.

    The caption is the tile's border title, so that a 4-row tile holds the value and its second
    line (MTTR, the severity split, "waiting"), which a caption row used to push out."""

    def __init__(self, caption: str, *, id: str) -> None:
        super().__init__(id=id, classes="kpi")
        self.caption = caption
        self.border_title = caption

    def compose(self) -> ComposeResult:
        yield Label("…", classes="kpi-value")
        yield Label("", classes="kpi-detail")

    def update(self, value: str, detail: str = "") -> None:
        self.query_one(".kpi-value", Label).update(value)
        self.query_one(".kpi-detail", Label).update(detail)


class ListCard(Vertical):
    """A titled card of label/value lines (next firings, role-specific cards)."""

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="card")
        self.border_title = title

    def compose(self) -> ComposeResult:
        yield Static("…", classes="card-body")

    def update(self, lines: Sequence[tuple[str, str]], *, title: str | None = None) -> None:
        if title is not None:
            self.border_title = title
        width = max((len(a) for a, _ in lines), default=0)
        body = "\n".join(f"{a.ljust(width)}  {b}" for a, b in lines) or "—"
        self.query_one(".card-body", Static).update(body)


class RunsChart(Vertical):
    """Runs per hour over the last day: successes above, failures below (sparklines)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="card")
        self.border_title = "Runs per hour, last 24 h"

    def compose(self) -> ComposeResult:
        yield Label("succeeded", classes="chart-label")
        yield Sparkline([0] * 24, id="spark-ok")
        yield Label("failed", classes="chart-label")
        yield Sparkline([0] * 24, id="spark-bad")

    def update(self, succeeded: Sequence[int], failed: Sequence[int]) -> None:
        self.query_one("#spark-ok", Sparkline).data = list(succeeded)
        self.query_one("#spark-bad", Sparkline).data = list(failed)
        labels = self.query(".chart-label").results(Label)
        ok_label, bad_label = list(labels)
        ok_label.update(f"succeeded: {sum(succeeded):,}  (peak {max(succeeded, default=0)}/h)")
        bad_label.update(f"failed: {sum(failed):,}  (peak {max(failed, default=0)}/h)")
