"""The one typed failure a pipeline stage raises.

A stage never lets a library traceback escape: it raises `StageError` with a stable UPPER_SNAKE code
(known-error patterns in the database match on `"<code>: <message>"`), a sentence an operator can
act on, a hint, and row/column pointers where they are known. The error crosses process boundaries
(stages run in a process pool), so it pickles by its fields, not by `Exception.args`.
"""

from __future__ import annotations

from typing import Any

from batchops_core.enums import Stage

# Codes the seed's known errors and the incident workflow rely on; keep them stable.
CSV_DELIMITER = "CSV_DELIMITER"
CSV_SINGLE_COLUMN = "CSV_SINGLE_COLUMN"
CSV_ENCODING = "CSV_ENCODING"
CSV_HEADER = "CSV_HEADER"
CSV_VALUE_TOO_LARGE = "CSV_VALUE_TOO_LARGE"
EMPTY_FILE = "EMPTY_FILE"
NOT_TEXT = "NOT_TEXT"
FILE_TOO_LARGE = "FILE_TOO_LARGE"
XLSX_ENCRYPTED = "XLSX_ENCRYPTED"
XLSX_CORRUPT = "XLSX_CORRUPT"
XLSX_ZIP_BOMB = "XLSX_ZIP_BOMB"
PDF_ENCRYPTED = "PDF_ENCRYPTED"
PDF_NO_TEXT = "PDF_NO_TEXT"
PDF_NO_TABLE = "PDF_NO_TABLE"
PDF_CORRUPT = "PDF_CORRUPT"
NO_DATA = "NO_DATA"
MISSING_COLUMN = "MISSING_COLUMN"
DUPLICATE_KEYS = "DUPLICATE_KEYS"
VALIDATION_THRESHOLD = "VALIDATION_THRESHOLD"
PLAN_INVALID = "PLAN_INVALID"
PUBLISH_FAILED = "PUBLISH_FAILED"
UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"
BAD_PATH = "BAD_PATH"
WORK_MISSING = "WORK_MISSING"
STORAGE_MISSING = "STORAGE_MISSING"
STORAGE_CORRUPT = "STORAGE_CORRUPT"
STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
INTERNAL = "INTERNAL"


class StageError(Exception):
    """A stage failed for a reason a person can act on.

    `row` is the row number as in the original file (1-based, spreadsheet style), `column` the
    normalized column name; both are None when the failure is not about one cell.
    """

    def __init__(
        self,
        stage: Stage | str,
        code: str,
        message: str,
        *,
        hint: str = "",
        row: int | None = None,
        column: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.stage = Stage(stage)
        self.code = code
        self.message = message
        self.hint = hint
        self.row = row
        self.column = column
        self.details = dict(details or {})

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {
            "hint": self.hint,
            "row": self.row,
            "column": self.column,
            "details": self.details,
        }
        return (_rebuild, (str(self.stage), self.code, self.message, kwargs))

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"StageError({self.stage.value!r}, {self.code!r}, {self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form for job-run logs, incidents and `--json` output."""
        return {
            "stage": self.stage.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "row": self.row,
            "column": self.column,
            "details": self.details,
        }


def _rebuild(stage: str, code: str, message: str, kwargs: dict[str, Any]) -> StageError:
    return StageError(stage, code, message, **kwargs)
