"""Text encoding of an uploaded CSV: decided on the head, repaired line by line, never garbled.

Why per line: exports are often UTF-8 with a few lines pasted from a legacy program (cp1252).
Re-reading such a file whole as cp1252 turns every good `José` into `JosÃ©` (issue #10.6). So
when a single-byte code page is asked for (the read option the encoding auto-fix sets), a line is
read as UTF-8 when it is valid UTF-8 and only otherwise with that code page. UTF-8 and the 8-bit
code pages share their line-break bytes, so lines can be judged apart. Without a read option a
mixed file still fails CSV_ENCODING naming the lines (a data problem worth an incident); the
known error's re-read then repairs it without garbling and the step log names the lines. A file
with no UTF-8 text at all is read whole with the legacy code page (cp1252 or what
charset-normalizer names), which Arrow does fast.

A byte-order mark is the file's own statement of its encoding and wins over a forced encoding:
a UTF-8 BOM read as cp1252 becomes `ï»¿` glued to the first column name (`istudent_id`).

Values holding U+FFFD (bytes no code page could read, or already in the file) are counted and
named in the step log after `REPLACEMENT_NOTE`; automatic remediation will not call an incident
resolved while that line is there (see `remediation.mark_auto_resolved`).
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass

from batchops_core.enums import Stage
from batchops_core.pipeline import errors as E
from batchops_core.pipeline.errors import StageError

S = Stage.STANDARDIZE
LEGACY_DEFAULT = "cp1252"
REPLACEMENT = "\ufffd"
REPLACEMENT_NOTE = "replacement characters:"
"""Prefix of the step-log line naming values that still hold U+FFFD after reading."""
_UTF8 = {"utf-8", "utf8", "u8", "utf_8"}
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n|$)")
_CONTROL = bytes([*range(9), *range(14, 32), 127])
_LF_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")


@dataclass(frozen=True)
class TextEncoding:
    """How to turn the file's bytes into text.

    `codec` is what the bulk reader is told; `legacy` (only with codec utf-8) is the code page
    for lines that are not UTF-8; `bom` the bytes of byte-order mark to skip; `label` what the
    step log and the metadata call the encoding; `note` says why a forced encoding was not used.
    """

    codec: str
    legacy: str | None = None
    bom: int = 0
    label: str = ""
    note: str = ""


def _lookup(forced: str) -> str:
    try:
        return codecs.lookup(forced).name
    except LookupError:
        raise StageError(
            S,
            E.CSV_ENCODING,
            f"unknown encoding {forced!r} in read options",
            hint="Use a Python codec name such as utf-8, cp1252 or utf-16.",
        ) from None


def _single_byte(codec: str) -> bool:
    try:
        return len("é".encode(codec)) == 1 and "\n".encode(codec) == b"\n"
    except (UnicodeEncodeError, LookupError):
        return len(b"\xe9".decode(codec, errors="replace")) == 1 and codec not in _UTF8


def _bom(head: bytes, forced: str | None) -> TextEncoding | None:
    marks = (
        (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
    )
    for mark, codec, label in marks:
        if head.startswith(mark):
            forced_name = _lookup(forced) if forced else ""
            legacy = None
            if codec == "utf-8" and forced_name and _single_byte(forced_name):
                legacy = forced_name
            note = ""
            if forced_name and not forced_name.startswith(codec[:6]):
                note = (
                    f"the file starts with a {label.upper()} byte-order mark, so it was read as "
                    f"{codec}, not as the requested {forced}"
                )
            return TextEncoding(codec, legacy, len(mark), label, note)
    return None


def detect_encoding(head: bytes, forced: str | None = None) -> TextEncoding:
    """Decide the encoding from the file's head; raise NOT_TEXT or CSV_ENCODING."""
    found = _bom(head, forced)
    if found is not None:
        return found
    if forced:
        name = _lookup(forced)
        if name in _UTF8 or name == "utf-8":
            _decode_or_fail(head, "utf-8")
            return TextEncoding("utf-8", None, 0, "utf-8")
        if not _single_byte(name):
            _decode_or_fail(head, name)
            return TextEncoding(forced, None, 0, forced)
        return _split_utf8_and_legacy(head, name)
    wide = _utf16_without_bom(head)
    if wide:
        return TextEncoding(wide, None, 0, wide)
    _reject_binary(head)
    return _split_utf8_and_legacy(head, None)


def _utf16_without_bom(head: bytes) -> str | None:
    if head.count(b"\x00") <= len(head) // 4:
        return None
    evens, odds = head[0::2].count(0), head[1::2].count(0)
    if odds > len(head) // 3 and evens < len(head) // 20:
        return "utf-16-le"
    if evens > len(head) // 3 and odds < len(head) // 20:
        return "utf-16-be"
    return None


def _split_utf8_and_legacy(head: bytes, legacy: str | None) -> TextEncoding:
    """UTF-8 when every complete line of the head is; the legacy code page alone when no line
    is non-ASCII UTF-8 (a plain cp1252 export, read fast whole); else UTF-8 line by line."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return TextEncoding("utf-8", legacy, 0, "utf-8")
    except UnicodeDecodeError:
        pass
    lines = _LINE.findall(head)[:-1] or [head]
    if len(lines) > 1 and not head.endswith((b"\n", b"\r")):
        lines = lines[:-1]  # the head may cut the last line in half
    bad = [k for k, ln in enumerate(lines) if not _is_utf8(ln)]
    chosen = legacy or _guess_legacy(b"".join(lines[k] for k in bad))
    if not bad:
        return TextEncoding("utf-8", legacy, 0, "utf-8")
    if not any(not ln.isascii() for ln in lines if _is_utf8(ln)):
        return TextEncoding(chosen, None, 0, chosen)
    if legacy is None:
        shown = ", ".join(str(k + 1) for k in bad[:10])
        raise StageError(
            S,
            E.CSV_ENCODING,
            f"the file mixes UTF-8 lines with lines in another encoding (probably {chosen}): "
            f"lines {shown}{' and more' if len(bad) > 10 else ''} are not UTF-8",
            hint=f"Re-read it with encoding {chosen}: the UTF-8 lines stay UTF-8 and only the "
            "others are read that way. Or save the file as 'CSV UTF-8'.",
            details={"encoding": "utf-8", "legacy_guess": chosen, "lines": bad[:10]},
        )
    return TextEncoding("utf-8", chosen, 0, f"utf-8 with {chosen} lines")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _guess_legacy(bad: bytes) -> str:
    if not bad or _decodes(bad, LEGACY_DEFAULT):
        return LEGACY_DEFAULT
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(bad[:65536]).best()
        guess = best.encoding if best is not None else None
    except Exception:  # pragma: no cover - detector failure means we fall back below
        guess = None
    if guess and _decodes(bad, guess) and _single_byte(guess):
        return guess
    return "latin-1"


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def _decode_or_fail(head: bytes, encoding: str) -> None:
    try:
        codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise StageError(
            S,
            E.CSV_ENCODING,
            f"the file cannot be read as {encoding}: byte {exc.start} is invalid",
            hint="Save the file as 'CSV UTF-8', or re-read it with another encoding.",
            details={"encoding": encoding, "byte_offset": exc.start},
        ) from None


def _reject_binary(head: bytes) -> None:
    if not head:
        return
    start = head[:65536]
    control = len(start) - len(start.translate(None, _CONTROL))
    if b"\x00" in head or control > max(8, len(start) // 100):
        raise StageError(
            S,
            E.NOT_TEXT,
            "the file is not text: it holds binary data, so it cannot be read as CSV",
            hint="Check that the right file was picked; export the data as CSV or XLSX.",
            details={"control_bytes": control},
        )


def decode_line(line: bytes, enc: TextEncoding) -> tuple[str, bool]:
    """One line as text, and whether the legacy code page had to read it."""
    if enc.legacy is None:
        return line.decode(enc.codec, errors="replace"), False
    try:
        return line.decode("utf-8"), False
    except UnicodeDecodeError:
        return line.decode(enc.legacy, errors="replace"), True


def head_lines(body: bytes, enc: TextEncoding, whole: bool) -> tuple[list[str], list[int]]:
    """The head as text lines (terminators kept) and each line's length in the file's bytes.

    One decode of the whole head when no line needs the legacy code page; line by line when
    the head mixes UTF-8 and legacy lines. The last line is left out when the head cut it."""
    if enc.label == "utf-8" or enc.legacy is None:
        text = codecs.getincrementaldecoder(enc.codec)(errors="replace").decode(body, final=whole)
        lines = io.StringIO(text, newline="").readlines()
        if not whole and len(lines) > 1:
            lines = lines[:-1]
        return lines, [len(ln.encode(enc.codec, errors="replace")) for ln in lines]
    raw = split_lines(body, enc)
    if not whole and len(raw) > 1:
        raw = raw[:-1]
    return [decode_line(ln, enc)[0] for ln in raw], [len(ln) for ln in raw]


def split_lines(data: bytes, enc: TextEncoding) -> list[bytes]:
    """Physical lines with their terminators (CRLF, LF or CR alone), in the file's bytes."""
    if enc.codec.startswith("utf-16"):
        text = data.decode(enc.codec, errors="ignore")
        return [ln.encode(enc.codec) for ln in io.StringIO(text, newline="").readlines()]
    return [ln for ln in _LINE.findall(data) if ln]


def transcode_to_utf8(data: memoryview | bytes, legacy: str) -> tuple[bytes, list[int], int]:
    """The bytes as UTF-8, lines that are not UTF-8 read with `legacy`.

    Returns (text, 1-based numbers of the lines read as legacy, values made U+FFFD). Blocks of
    1 MiB that are valid UTF-8 as a whole are copied as they are, so only the blocks that hold a
    bad line pay for the per-line loop.
    """
    out = io.BytesIO()
    legacy_lines: list[int] = []
    replaced = 0
    raw = bytes(data)
    pos, line_no, size = 0, 0, len(raw)
    while pos < size:
        end = raw.find(b"\n", min(pos + (1 << 20), size))
        end = size if end < 0 else end + 1
        block = raw[pos:end]
        if _is_utf8(block):
            out.write(block)
            line_no += block.count(b"\n")
        else:
            for line in _LF_LINE.findall(block):
                line_no += 1
                try:
                    line.decode("utf-8")
                    out.write(line)
                except UnicodeDecodeError:
                    text = line.decode(legacy, errors="replace")
                    replaced += text.count(REPLACEMENT)
                    legacy_lines.append(line_no)
                    out.write(text.encode("utf-8"))
        pos = end
    return out.getvalue(), legacy_lines, replaced
