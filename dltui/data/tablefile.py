"""The bytes of a user's table: gzip or not, encoding, delimiter, header, and what pandas
would silently accept (NUL bytes, undecodable text, rows with too few fields), checked in
one vectorised pass over the file before ``table.py`` parses it."""

from __future__ import annotations

import codecs
import csv
import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from dltui.errors import DataError

DELIMITERS = ",\t;|"
SAMPLE_BYTES = 1 << 16  # what the delimiter and header are guessed from
CHUNK = 1 << 22  # bytes per step of the full scan: bounded memory for any file size
_NA = {"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a", "<na>"}  # missing cells, for the guesses
_CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)


@dataclass
class _Format:
    delimiter: str
    header: bool
    names: list[str]
    encoding: str
    gz: bool
    records: int  # non-blank records, the header included
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"delimiter": self.delimiter, "header": self.header, "encoding": self.encoding, "gzip": self.gz}


def _fail(path: Path, message: str) -> NoReturn:
    raise DataError(f"{path}: {message}")


def _open_bytes(path: Path, gz: bool):
    return gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 (the caller closes it)


def _inspect(path: Path, delimiter: str | None = None, header: bool | None = None) -> _Format:
    """Check the file is a readable text table and find its format; ``delimiter`` and
    ``header`` given (from a schema) are used instead of guessed."""
    if not path.exists():
        _fail(path, "no such file")
    if path.is_dir():
        _fail(path, "is a directory, not a table file")
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"  # by content, so a gzipped file needs no .gz name
        with _open_bytes(path, gz) as f:
            head = f.read(SAMPLE_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        _fail(path, f"cannot be read ({'a damaged gzip file' if gz else exc.strerror or exc.__class__.__name__})")
    if not head.strip():
        _fail(path, "is empty")
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        _fail(path, "is UTF-16 text: save it as UTF-8 (or CSV UTF-8 in a spreadsheet)")
    if head[:4] == b"PK\x03\x04":
        _fail(path, "is a zip archive (an Excel workbook?), not a CSV file: export it as CSV")
    if (nul := head.find(b"\x00")) >= 0:
        _fail(path, f"is not a text table (a NUL byte at offset {nul}: a binary file?)")
    if b"\n" not in head and b"\r" in head.rstrip(b"\r"):
        _fail(path, "ends its lines with CR alone (classic Mac): save it with LF or CRLF line ends")
    whole = len(head) < SAMPLE_BYTES
    if delimiter is None:
        delimiter = _sniff_delimiter(_lines(head, "utf-8", whole), path.name)
    encoding, records, notes = _scan(path, gz, delimiter)
    rows = [r for r in csv.reader(_lines(head, encoding, whole), delimiter=delimiter, skipinitialspace=True) if r]
    if not rows:
        _fail(path, "is empty")
    if header is None:
        header = _has_header(rows)
    if header and records == 1:
        _fail(path, "has a header row but no data rows")
    names = _names(rows[0]) if header else [f"col{i}" for i in range(len(rows[0]))]
    return _Format(delimiter, header, names, encoding, gz, records, notes)


def _lines(head: bytes, encoding: str, whole: bool) -> list[str]:
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    parts = text.split("\n")  # not splitlines(): that also splits at U+2028, form feeds and more
    lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return lines if whole or len(lines) < 2 else lines[:-1]  # the last line may be cut short


def _sniff_delimiter(lines: list[str], name: str) -> str:
    """The candidate giving every sample row the same number (> 1) of fields; the
    extension's own delimiter first, else the one giving the most fields."""
    lower = name.lower().removesuffix(".gz")
    prefer = "\t" if lower.endswith((".tsv", ".tab")) else "," if lower.endswith(".csv") else None
    best: tuple[str, int] | None = None
    for d in sorted(DELIMITERS, key=lambda c: c != prefer):
        counts = {len(r) for r in csv.reader(lines, delimiter=d, skipinitialspace=True) if r}
        if len(counts) == 1 and (n := counts.pop()) > 1:
            if d == prefer:
                return d
            if best is None or n > best[1]:
                best = (d, n)
    return best[0] if best else prefer or ","  # none fits: the scan will say which line is ragged


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _has_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns. A word on top of a column of numbers says
    yes; a number on top of numbers, or a first value repeated below it, says no; with no
    evidence either way (every column text, every first value unique) a header is assumed."""
    first, rest = rows[0], rows[1:]
    if not rest:
        return True
    votes = {True: 0, False: 0}
    for j, top in enumerate(first):
        below = [r[j] for r in rest if j < len(r) and r[j].strip().lower() not in _NA]
        if not below or top.strip().lower() in _NA:
            continue
        if all(_is_number(v) for v in below):
            votes[not _is_number(top)] += 1
        elif top in below:
            votes[False] += 1
    return votes[True] > 0 or votes[False] == 0


def _names(row: list[str]) -> list[str]:
    """Header cells as column names: blanks become col<i>, repeats get .1, .2 (as pandas does)."""
    names: list[str] = []
    for i, cell in enumerate(row):
        name = cell.strip() or f"col{i}"
        base, k = name, 0
        while name in names:
            k += 1
            name = f"{base}.{k}"
        names.append(name)
    return names


def _scan(path: Path, gz: bool, delimiter: str) -> tuple[str, int, list[str]]:
    """One pass over all the bytes, CHUNK at a time, all numpy: NUL bytes, UTF-8 validity,
    and the number of fields of every record (delimiters outside quotes; a quote toggles,
    so an escaped "" keeps the parity). Returns (encoding, non-blank records, notes).
    pandas pads a short row with missing values without a word; this catches it."""
    import numpy as np

    decoder = codecs.getincrementaldecoder("utf-8")()
    bad_utf8: int | None = None
    d, q, nl, cr = ord(delimiter), ord('"'), 10, 13
    quoted = 0  # quote parity carried into a chunk
    open_delims = open_len = open_last = 0  # the record still open at a chunk's end
    expected: int | None = None
    suspicious = False
    records = offset = 0
    try:
        with _open_bytes(path, gz) as f:
            while chunk := f.read(CHUNK):
                buf = np.frombuffer(chunk, np.uint8)
                if (nul := chunk.find(b"\x00")) >= 0:
                    _fail(path, f"is not a text table (a NUL byte at offset {offset + nul}: a binary file?)")
                if bad_utf8 is None:
                    carried = len(decoder.getstate()[0])
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        bad_utf8 = offset - carried + exc.start
                isq = buf == q
                if isq.any():
                    parity = np.bitwise_xor.accumulate(isq.view(np.uint8)) ^ np.uint8(quoted)
                    outside = parity == 0
                    quoted = int(parity[-1])
                    nls = np.flatnonzero((buf == nl) & outside)
                    dls = np.flatnonzero((buf == d) & outside)
                elif quoted:  # the whole chunk inside one quoted field
                    nls = dls = np.empty(0, np.int64)
                else:
                    nls, dls = np.flatnonzero(buf == nl), np.flatnonzero(buf == d)
                if len(nls):
                    before = np.searchsorted(dls, nls)
                    delims = np.diff(before, prepend=0)
                    delims[0] += open_delims
                    lengths = nls - np.concatenate(([0], nls[:-1] + 1))
                    lengths[0] += open_len
                    last = np.where(nls > 0, buf[np.maximum(nls - 1, 0)], open_last)
                    fields = (delims + 1)[~((lengths == 0) | ((lengths == 1) & (last == cr)))]
                    if len(fields):
                        expected = int(fields[0]) if expected is None else expected
                        suspicious |= bool((fields != expected).any())
                        records += len(fields)
                    open_delims, open_len = len(dls) - int(before[-1]), len(buf) - int(nls[-1]) - 1
                else:
                    open_delims, open_len = open_delims + len(dls), open_len + len(buf)
                open_last = int(buf[-1])
                offset += len(chunk)
        if bad_utf8 is None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                bad_utf8 = offset - len(decoder.getstate()[0])
    except (OSError, EOFError, zlib.error):
        _fail(path, "cannot be read (a damaged gzip file)" if gz else "cannot be read")
    if open_len and not (open_len == 1 and open_last == cr):  # a last record without a newline
        records += 1
        expected = open_delims + 1 if expected is None else expected
        suspicious |= open_delims + 1 != expected
    if records == 0:
        _fail(path, "is empty")
    encoding, notes = "utf-8", []
    if bad_utf8 is not None:
        if _has_cp1252_undefined(path, gz):
            _fail(path, f"is not UTF-8 text (invalid byte at offset {bad_utf8}) nor cp1252: save it as UTF-8")
        encoding = "cp1252"
        notes.append(f"{path.name} is not UTF-8 (byte {bad_utf8}): read as cp1252 (Windows Latin-1)")
    if suspicious or quoted:
        _find_ragged(path, gz, encoding, delimiter)
    return encoding, records, notes


def _has_cp1252_undefined(path: Path, gz: bool) -> bool:
    import numpy as np

    undefined = np.zeros(256, bool)
    undefined[list(_CP1252_UNDEFINED)] = True
    with _open_bytes(path, gz) as f:
        while chunk := f.read(CHUNK):
            if undefined[np.frombuffer(chunk, np.uint8)].any():
                return True
    return False


def _find_ragged(path: Path, gz: bool, encoding: str, delimiter: str) -> None:
    """The scan saw a record with another field count (or an unclosed quote): find its line
    with the csv module, which reads quotes as pandas does. Runs only then, so its Python
    loop costs nothing on a good file; a quote inside an unquoted field (5'10") can mislead
    the scan, and then this finds nothing and reading goes on."""
    import io

    with _open_bytes(path, gz) as raw, io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        expected, start = None, 1
        try:
            for row in reader:
                if row and expected is None:
                    expected = len(row)
                elif row and len(row) != expected:
                    n, end = len(row), reader.line_num
                    where = f"line {end}" if end == start else f"the row on lines {start}-{end} (a quote left open?)"
                    hint = " (row names without a header cell?)" if end == 2 and n == expected + 1 else ""
                    _fail(path, f"ragged rows: {where} has {n} field{'s' * (n != 1)}, the first line {expected}{hint}")
                start = reader.line_num + 1
        except csv.Error as exc:
            _fail(path, f"cannot be parsed near line {reader.line_num} ({exc})")
