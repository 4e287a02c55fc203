"""1 · Home: KPIs, worker health, next firings, runs per hour, and a card for the role."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll

from batchops_core.enums import Severity
from batchops_tui.formatting import duration, number, percent, short_when
from batchops_tui.screens.base import BaseScreen
from batchops_tui.widgets.home.cards import Kpi, ListCard, RunsChart


class HomeScreen(BaseScreen):
    TITLE = "Home"
    EVENT_PREFIXES = ("upload", "run", "incident", "schedule", "worker")

    def body(self) -> ComposeResult:
        with VerticalScroll(id="home"):
            with Grid(id="kpis"):
                yield Kpi("Uploads today", id="kpi-today")
                yield Kpi("Uploads, 7 days", id="kpi-week")
                yield Kpi("Success rate", id="kpi-success")
                yield Kpi("Rows processed", id="kpi-rows")
                yield Kpi("Open incidents", id="kpi-incidents")
                yield Kpi("MTTA (30 days)", id="kpi-mtt")
                yield Kpi("Workers", id="kpi-workers")
                yield Kpi("Queue depth", id="kpi-queue")
            with Horizontal(id="home-lower"):
                yield RunsChart(id="runs-chart")
                yield ListCard("Next firings", id="next-firings")
            yield Horizontal(id="role-cards")

    def reload(self) -> None:
        self.load()

    @work(exclusive=True, group="home", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.dashboard import get_dashboard

        async with self.bo.db.unit() as session:
            dash = await get_dashboard(
                session, self.bo.settings, actor=self.bo.actor, now=self.bo.clock()
            )
        self.query_one("#kpi-today", Kpi).update(number(dash.uploads_today))
        self.query_one("#kpi-week", Kpi).update(number(dash.uploads_week))
        self.query_one("#kpi-success", Kpi).update(percent(dash.success_rate), "last 7 days")
        self.query_one("#kpi-rows", Kpi).update(number(dash.rows_processed), "last 7 days")
        sev = dash.open_by_severity
        self.query_one("#kpi-incidents", Kpi).update(
            number(dash.open_incidents),
            " ".join(f"{s.value[0].upper()}{sev[s]}" for s in reversed(Severity)),
        )
        self.query_one("#kpi-mtt", Kpi).update(duration(dash.mtta), f"MTTR {duration(dash.mttr)}")
        workers = dash.workers
        detail = f"{workers.jobs_running} running"
        if workers.stale:
            detail += f", {workers.stale} stale"
        if not self.bo.settings.uses_redis:
            detail = "+ embedded (this window)"
        self.query_one("#kpi-workers", Kpi).update(f"{workers.alive} alive", detail)
        self.query_one("#kpi-queue", Kpi).update(number(workers.queue_depth), "waiting")
        self.query_one(RunsChart).update(
            [b.succeeded for b in dash.runs_per_hour], [b.failed for b in dash.runs_per_hour]
        )
        self.query_one("#next-firings", ListCard).update(
            [(short_when(f.at), f.name) for f in dash.next_firings] or [("no enabled schedule", "")]
        )
        holder = self.query_one("#role-cards", Horizontal)
        await holder.remove_children()
        cards = []
        for card in dash.cards:
            widget = ListCard(card.title, id=None)
            cards.append((widget, card))
        await holder.mount_all([w for w, _ in cards])
        for widget, card in cards:
            widget.update(card.lines)
