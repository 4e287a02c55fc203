"""2 · Intake: pick files (tree or path), choose department and plan, submit; watch the queue.

The queue shows the latest uploads with a five-step progress bar that moves with the pipeline's
`upload.updated` events (or the poll without Redis). Files are stored and hashed by the core's
`services.uploads.submit`, in a worker; the service checks the plan and each file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DirectoryTree, Input, Label, Select

from batchops_core.errors import ValidationFailed
from batchops_core.services import uploads
from batchops_core.services.pagination import Page
from batchops_tui.formatting import clip, number, plain, short_when, stage_bar
from batchops_tui.screens.base import BaseScreen
from batchops_tui.widgets.common.paged_table import PagedTable
from batchops_tui.widgets.intake.file_tree import IntakeTree
from batchops_tui.widgets.intake.plan_form import PlanForm

QUEUE_COLUMNS = (
    ("id", "#", 1, 4),
    ("file", "file", 1, 28),
    ("status", "status", 1, 10),
    ("progress", "progress", 2, 8),
    ("stage", "stage", 3, 9),
    ("rows", "rows", 3, 7),
    ("when", "created", 4, 11),
)
STYLE = {"published": "green", "partial": "yellow", "failed": "bold red", "duplicate": "dim"}


def upload_cells(u: Any) -> list[object]:
    status = str(getattr(u.status, "value", u.status))
    stage = getattr(u, "current_stage", None)
    bar = stage_bar(stage, done=status in {"published", "partial"})
    return [
        str(u.id),
        clip(u.filename, 28),
        Text(status, style=STYLE.get(status, "cyan")),
        Text(bar, style=STYLE.get(status, "cyan")),
        str(getattr(stage, "value", stage) or "—"),
        number(getattr(u, "rows_out", None) or getattr(u, "rows_in", None)),
        short_when(getattr(u, "created_at", None)),
    ]


class IntakeScreen(BaseScreen):
    TITLE = "Intake"
    EVENT_PREFIXES = ("upload",)
    BINDINGS = [
        Binding(
            "ctrl+s",
            "submit",
            "Upload",
            id="intake.submit",
            priority=True,
            tooltip="Upload the chosen files",
        ),
        Binding(
            "ctrl+n",
            "clear_files",
            "Clear files",
            id="intake.clear",
            priority=True,
            tooltip="Forget the chosen files",
        ),
        Binding(
            "x",
            "cancel_upload",
            "Cancel upload",
            show=False,
            id="intake.cancel",
            tooltip="Stop the queued or processing upload chosen in the queue",
        ),
        Binding(
            "a",
            "process_again",
            "Again with plan",
            show=False,
            id="intake.again",
            tooltip="Process the upload chosen in the queue again with the plan in the form",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.files: list[Path] = []
        self._departments_loaded = False

    def body(self) -> ComposeResult:
        root = Path(self.app.settings.pipeline.intake_root).expanduser()  # type: ignore[attr-defined]
        with Horizontal(id="intake-top"):
            with Vertical(id="intake-files"):
                yield IntakeTree(root, id="intake-tree")
                yield Input(
                    placeholder="file or folder path, enter (backspace in tree: up)",
                    id="intake-path",
                )
            form = VerticalScroll(id="intake-form")
            form.can_focus = False  # tab goes field to field; each scrolls itself into view
            with form:
                yield Label("no file chosen (enter on a file in the tree)", id="selected-files")
                yield Select([], prompt="department", id="intake-department")
                yield PlanForm(id="plan-form")
                yield Button("Upload (ctrl+s)", variant="primary", id="intake-submit")
        yield PagedTable(QUEUE_COLUMNS, page_size=10, id="intake-queue")

    def reload(self) -> None:
        self.load_queue()
        if not self._departments_loaded:
            self.load_departments()

    @work(exclusive=True, group="intake-queue", exit_on_error=False)
    async def load_queue(self) -> None:
        table = self.query_one(PagedTable)
        page: Page[Any] = await self.page_of(uploads.list_uploads, table)
        table.show(page, [(str(u.id), upload_cells(u)) for u in page.items])

    @work(exclusive=True, group="intake-departments", exit_on_error=False)
    async def load_departments(self) -> None:
        departments = await self.call(uploads.list_departments)
        self.query_one("#intake-department", Select).set_options(
            [(d.name, d.name) for d in departments]
        )
        self._departments_loaded = True

    @on(PagedTable.QueryChanged)
    def _query(self) -> None:
        self.load_queue()

    # -- choosing files ----------------------------------------------------------------------------

    def _show_files(self) -> None:
        label = self.query_one("#selected-files", Label)
        if not self.files:
            label.update("no file chosen (enter on a file in the tree)")
            return
        names = ", ".join(p.name for p in self.files[:4])
        more = f" and {len(self.files) - 4} more" if len(self.files) > 4 else ""
        label.update(plain(f"{len(self.files)} file(s): {names}{more}"))

    @on(DirectoryTree.FileSelected)
    def _file_selected(self, event: DirectoryTree.FileSelected) -> None:
        path = Path(event.path)
        if path in self.files:
            self.files.remove(path)
        else:
            self.files.append(path)
        self._show_files()

    @on(Input.Submitted, "#intake-path")
    def _path_typed(self, event: Input.Submitted) -> None:
        self.check_path(event.value.strip())

    @work(exclusive=True, group="intake-path", exit_on_error=False, thread=True)
    def check_path(self, text: str) -> None:
        if not text:
            return  # enter on an empty field: nothing to open
        path = Path(text).expanduser()
        if path.is_dir():
            self.app.call_from_thread(self._open_folder, path)
            return
        if not path.is_file():
            raise ValidationFailed(f"{path} is neither a file nor a folder; check the path.")
        self.app.call_from_thread(self._add_file, path)

    def _open_folder(self, path: Path) -> None:
        self.query_one(IntakeTree).go_to(path)
        self.query_one("#intake-path", Input).value = ""
        self.query_one(IntakeTree).focus()

    def _add_file(self, path: Path) -> None:
        if path not in self.files:
            self.files.append(path)
        self.query_one("#intake-path", Input).value = ""
        self._show_files()

    def action_clear_files(self) -> None:
        self.files.clear()
        self._show_files()

    # -- submitting --------------------------------------------------------------------------------

    @on(Button.Pressed, "#intake-submit")
    def _submit_pressed(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        if not self.files:
            self.notify("Choose at least one file first.", severity="warning", markup=False)
            return
        department = self.query_one("#intake-department", Select).value
        source = "manual" if department is Select.NULL else str(department)
        try:
            mode, config = self.query_one(PlanForm).config()
        except ValidationFailed as exc:
            self.notify(str(exc), title="Plan", severity="error", markup=False)
            return
        self.submit(list(self.files), source, mode.value, config)

    @work(exclusive=True, group="write-intake", exit_on_error=False)
    async def submit(
        self, files: list[Path], source: str, mode: str, config: dict[str, Any]
    ) -> None:
        dispatcher = await self.bo.get_dispatcher()
        submitted = await uploads.submit(
            self.bo.db,
            dispatcher,
            actor=self.bo.actor,
            files=files,
            source=source,
            plan_mode=mode,
            plan_config=config,
        )
        done = []
        for result in submitted:
            if result.upload is None:
                self.notify(str(result.rejected), title="Intake", severity="error", markup=False)
                continue
            self.bo.my_uploads.add(result.upload.id)
            done.append(f"#{result.upload.id}")
        self.files.clear()
        self._show_files()
        if done:
            self.query_one(PlanForm).reset()
            self.notify(f"Uploaded {', '.join(done)}; processing.", title="Intake", markup=False)
        self.load_queue()

    # -- the queue's row: cancel, process again ----------------------------------------------------

    def _queued_choice(self) -> int | None:
        key = self.query_one(PagedTable).selected_key()
        if key is None:
            self.notify("Choose an upload in the queue first.", severity="warning", markup=False)
        return int(key) if key else None

    def action_cancel_upload(self) -> None:
        upload_id = self._queued_choice()
        if upload_id is None:
            return
        self.confirm(
            "Cancel upload?",
            f"Stop upload #{upload_id}? A queued upload is never processed; a processing one "
            "stops at its next stage without publishing.",
            lambda: self.cancel_upload(upload_id),
            confirm="Cancel upload",
        )

    @work(exclusive=True, group="write-intake", exit_on_error=False)
    async def cancel_upload(self, upload_id: int) -> None:
        from batchops_core.services.actions import cancel_upload

        done = await self.call(cancel_upload, upload_id=upload_id)
        self.notify(f"Upload #{upload_id} cancelled (it was {done.was}).", markup=False)
        self.load_queue()

    def action_process_again(self) -> None:
        upload_id = self._queued_choice()
        if upload_id is None:
            return
        try:
            mode, config = self.query_one(PlanForm).config()
        except ValidationFailed as exc:
            self.notify(str(exc), title="Plan", severity="error", markup=False)
            return
        self.confirm(
            "Process again?",
            f"Process the file of upload #{upload_id} again with the {mode.value} plan in the "
            "form? It is processed even if the same file was published before.",
            lambda: self.process_again(upload_id, mode.value, config),
            confirm="Process again",
        )

    @work(exclusive=True, group="write-intake", exit_on_error=False)
    async def process_again(self, upload_id: int, mode: str, config: dict[str, Any]) -> None:
        from batchops_core.services.actions import process_again

        info = await process_again(
            self.bo.db,
            await self.bo.get_dispatcher(),
            actor=self.bo.actor,
            upload_id=upload_id,
            plan_mode=mode,
            plan_config=config,
        )
        self.bo.my_uploads.add(info.id)
        self.notify(f"Upload #{upload_id} submitted again as #{info.id}.", markup=False)
        self.load_queue()
