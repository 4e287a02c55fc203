"""Bad input fails at the right stage with a clear code, and leaves no report behind."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from batchops_core.enums import Stage
from batchops_core.infra.config import Settings
from batchops_core.pipeline.errors import StageError
from batchops_core.pipeline.stages import StageContext, run_all
from tests.pipeline.helpers import settings_with


def fails(ctx: StageContext) -> StageError:
    with pytest.raises(StageError) as err:
        run_all(ctx)
    assert not Path(ctx.export_dir).exists(), "a failed upload must leave no report"
    return err.value


def _xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Student ID", "Score"])
    ws.append(["S1", 90])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_empty_file(write: Callable[..., Path], make_ctx: Callable[..., StageContext]) -> None:
    err = fails(make_ctx(write("empty.csv", b"")))
    assert (err.code, err.stage) == ("EMPTY_FILE", Stage.STANDARDIZE)


def test_blank_lines_only(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    assert fails(make_ctx(write("blank.csv", "\n\n  \n"))).code == "EMPTY_FILE"


def test_header_without_rows(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    assert fails(make_ctx(write("header.csv", "student_id,score\n"))).code == "NO_DATA"


def test_binary_garbage_named_csv(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    err = fails(make_ctx(write("grades.csv", os.urandom(4096))))
    assert err.code == "NOT_TEXT" and "binary" in err.message


def test_zip_bomb_xlsx(write: Callable[..., Path], make_ctx: Callable[..., StageContext]) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(120):  # 120 MB of zeros compress ~1000:1
                member.write(chunk)
    path = write("bomb.xlsx", buf.getvalue())
    assert path.stat().st_size < 1 << 20
    err = fails(make_ctx(path))
    assert err.code == "XLSX_ZIP_BOMB" and "zip bomb" in err.message


def test_password_protected_xlsx(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = io.BytesIO(_xlsx_bytes())
    out = io.BytesIO()
    OOXMLFile(plain).encrypt("secret", out)
    err = fails(make_ctx(write("locked.xlsx", out.getvalue())))
    assert err.code == "XLSX_ENCRYPTED" and "password" in err.message


def test_corrupt_xlsx(write: Callable[..., Path], make_ctx: Callable[..., StageContext]) -> None:
    assert fails(make_ctx(write("broken.xlsx", b"PK\x03\x04" + b"x" * 200))).code == "XLSX_CORRUPT"


def test_encrypted_pdf(write: Callable[..., Path], make_ctx: Callable[..., StageContext]) -> None:
    from fpdf import FPDF
    from fpdf.enums import EncryptionMethod

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(40, 10, "student_id score")
    pdf.set_encryption(
        owner_password="o", user_password="u", encryption_method=EncryptionMethod.RC4
    )
    err = fails(make_ctx(write("locked.pdf", bytes(pdf.output()))))
    assert err.code == "PDF_ENCRYPTED"


def test_scanned_pdf_without_text(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext], tmp_path: Path
) -> None:
    from fpdf import FPDF
    from PIL import Image

    image = tmp_path / "scan.png"
    Image.new("RGB", (300, 200), "white").save(image)
    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.image(str(image), 10, 10, 150)
    err = fails(make_ctx(write("scan.pdf", bytes(pdf.output()))))
    assert err.code == "PDF_NO_TEXT"
    assert "pages 1, 2" in err.message and "scanned" in err.message


def test_pdf_with_prose_only(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "", 11)
    pdf.multi_cell(0, 6, "This letter informs parents about the trip. " * 20)
    err = fails(make_ctx(write("letter.pdf", bytes(pdf.output()))))
    assert err.code == "PDF_NO_TABLE" and "pages 1" in err.message


def test_corrupt_pdf(write: Callable[..., Path], make_ctx: Callable[..., StageContext]) -> None:
    assert fails(make_ctx(write("broken.pdf", b"%PDF-1.4\n garbage"))).code == "PDF_CORRUPT"


def test_oversize_file(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext], pipe_settings: Settings
) -> None:
    small = settings_with(pipe_settings, max_upload_mb=1)
    path = write("big.csv", "student_id,score\n" + "S1,1\n" * 220_000)
    err = fails(make_ctx(path, settings=small))
    assert err.code == "FILE_TOO_LARGE" and "1 MB limit" in err.message


def test_unsupported_type(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    assert fails(make_ctx(write("notes.docx", b"hello"))).code == "UNSUPPORTED_TYPE"


def test_pdf_renamed_csv_is_read_as_pdf(
    write: Callable[..., Path], make_ctx: Callable[..., StageContext]
) -> None:
    err = fails(make_ctx(write("report.csv", b"%PDF-1.4\n garbage")))
    assert err.code == "PDF_CORRUPT"


def test_export_names_are_sanitized() -> None:
    from batchops_core.pipeline.stages import safe_stem

    assert safe_stem("../../etc/pass\x00wd.csv") == "pass_wd"
    assert safe_stem("Grädes 9A (final).xlsx") == "Grades_9A_final"
    assert safe_stem("...csv") == "upload"


def test_missing_stored_file(tmp_path: Path, make_ctx: Callable[..., StageContext]) -> None:
    assert fails(make_ctx(tmp_path / "gone.csv")).code == "BAD_PATH"
    assert fails(make_ctx(tmp_path)).code == "BAD_PATH"
