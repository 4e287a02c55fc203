"""1 · Home: KPIs, worker health, next firings, runs per hour, and a card for the role."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.widgets import Static

from batchops_core.enums import Severity
from batchops_tui.formatting import duration, number, percent, plain, short_when
from batchops_tui.screens.base import BaseScreen
from batchops_tui.widgets.home.cards import Kpi, ListCard, RunsChart

if TYPE_CHECKING:
    from batchops_core.services.overdue import OverdueSchedule


class HomeScreen(BaseScreen):
    TITLE = "Home"
    EVENT_PREFIXES = ("upload", "run", "incident", "schedule", "worker")

    def body(self) -> ComposeResult:
        with VerticalScroll(id="home"):
            yield Static("", id="home-warnings")
            with Grid(id="kpis"):
                yield Kpi("Uploads, day", id="kpi-today")
                yield Kpi("Uploads, week", id="kpi-week")
                yield Kpi("Success rate", id="kpi-success")
                yield Kpi("Rows, 7 days", id="kpi-rows")
                yield Kpi("Open issues", id="kpi-incidents")
                yield Kpi("MTTA, 30 days", id="kpi-mtt")
                yield Kpi("Workers", id="kpi-workers")
                yield Kpi("Queue depth", id="kpi-queue")
            with Horizontal(id="home-lower"):
                yield RunsChart(id="runs-chart")
                yield ListCard("Next firings", id="next-firings")
            yield Horizontal(id="role-cards")

    def reload(self) -> None:
        self.load()

    def show_warnings(self, alive: int, overdue: Sequence[OverdueSchedule]) -> None:
        """No worker alive, or schedules not fired: said first, in words, with what to do."""
        lines = []
        if not self.bo.settings.uses_redis:
            if overdue:
                lines.append(
                    f"⚠ {len(overdue)} schedule(s) overdue: this window processes uploads but "
                    "fires no schedules; start batchops-daemon (or `batchops-daemon --once`)."
                )
        elif alive == 0:
            lines.append(
                "⚠ No worker is alive: uploads and schedules wait. Start batchops-daemon "
                "(systemctl start batchops-daemon) and check `batchops status`."
            )
        elif overdue:
            names = ", ".join(o.name for o in overdue[:3])
            lines.append(f"⚠ {len(overdue)} schedule(s) overdue ({names}): is the daemon firing?")
        warnings = self.query_one("#home-warnings", Static)
        warnings.update(plain("\n".join(lines)))
        warnings.display = bool(lines)

    @work(exclusive=True, group="home", exit_on_error=False)
    async def load(self) -> None:
        from batchops_core.services.dashboard import get_dashboard
        from batchops_core.services.overdue import overdue_schedules

        now = self.bo.clock()
        async with self.bo.db.unit() as session:
            dash = await get_dashboard(session, self.bo.settings, actor=self.bo.actor, now=now)
            overdue = await overdue_schedules(session, actor=self.bo.actor, now=now)
        self.show_warnings(dash.workers.alive, overdue)
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
            detail = "+ this window"
        self.query_one("#kpi-workers", Kpi).update(f"{workers.alive} alive", detail)
        self.query_one("#kpi-queue", Kpi).update(number(workers.queue_depth), "waiting")
        self.query_one(RunsChart).update(
            [b.succeeded for b in dash.runs_per_hour], [b.failed for b in dash.runs_per_hour]
        )
        late = [(f"overdue {short_when(o.due_at)}", o.name) for o in overdue[:3]]
        late_ids = {o.id for o in overdue}
        upcoming = [
            (short_when(f.at), f.name) for f in dash.next_firings if f.job_id not in late_ids
        ]
        self.query_one("#next-firings", ListCard).update(
            (late + upcoming)[:5] or [("no enabled schedule", "")]
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
