"""The export folder: the one place a report copy may be written, so an export cannot destroy.

A moderator once exported a report over the embedded database file. Now a copy goes only under
`export_dir` (default `~/batchops-exports`): a relative destination is taken inside it, an absolute
one must lie inside it; `..`, any symlink at or below the folder, and anything inside the data
directory are refused; an existing file is replaced only with `force` (the CLI's `--force`, the
TUI's confirmation). The copy is written to a fresh temporary file opened with `O_EXCL |
O_NOFOLLOW` relative to the folder's descriptor and renamed over the target, so a symlink swapped
in after the checks is replaced, never followed. Blocking: call it from a thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from batchops_core.errors import ValidationFailed
from batchops_core.infra.config import Settings


@dataclass(frozen=True)
class Exported:
    path: Path
    replaced: bool
    size: int


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def export_root(settings: Settings) -> Path:
    """The export folder, created 0750 when missing; refused when it is a symlink or lies in
    the data directory."""
    root = Path(os.path.abspath(settings.export_path))
    if root.is_symlink():
        raise ValidationFailed(f"the export folder {root} is a symbolic link; configure a folder.")
    data = settings.data_path.resolve()
    if _inside(root.resolve(), data) or _inside(data, root.resolve()):
        raise ValidationFailed(
            f"the export folder {root} overlaps the data directory {data}; set export_dir "
            "to a folder of its own."
        )
    root.mkdir(mode=0o750, parents=True, exist_ok=True)
    if not root.is_dir():
        raise ValidationFailed(f"the export folder {root} is not a folder.")
    return root


def export_target(settings: Settings, destination: str | Path | None, default_name: str) -> Path:
    """Where a copy named `default_name` may go for `destination` (None: the folder itself)."""
    root = export_root(settings)
    given = Path(destination).expanduser() if destination not in (None, "") else Path(".")
    if ".." in given.parts:
        raise ValidationFailed(f"'{destination}' climbs out with '..'; name a path inside {root}.")
    target = given if given.is_absolute() else root / given
    target = Path(os.path.normpath(target))
    if not _inside(target, root):
        raise ValidationFailed(
            f"reports are exported only into {root} (the export folder); '{destination}' is "
            "outside it."
        )
    current = root
    for part in target.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            raise ValidationFailed(f"{current} is a symbolic link; exports never follow links.")
    if target.is_dir():
        target = target / default_name
        if target.is_symlink():
            raise ValidationFailed(f"{target} is a symbolic link; exports never follow links.")
    if _inside(target.resolve(), settings.data_path.resolve()):
        raise ValidationFailed(f"{target} is inside the data directory; choose another name.")
    if not target.parent.is_dir():
        raise ValidationFailed(
            f"the folder {target.parent} does not exist; choose a folder inside {root}."
        )
    return target


def copy_into(source: Path, target: Path, *, force: bool) -> Exported:
    """Copy `source` to `target` (checked by `export_target`); refuse to replace without force."""
    try:
        existing = os.lstat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if not stat.S_ISREG(existing.st_mode):
            raise ValidationFailed(f"{target} exists and is not a regular file; choose a name.")
        if not force:
            raise ValidationFailed(
                f"{target} already exists; export again with --force (or confirm) to replace it."
            )
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    folder = os.open(target.parent, flags)
    tmp = f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        fd = os.open(
            tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640, dir_fd=folder
        )
        try:
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
            raise
    finally:
        os.close(folder)
    return Exported(path=target, replaced=existing is not None, size=target.stat().st_size)
