"""A user's own table: CSV / TSV (plain or gzipped, with or without a header) as :class:`OwnData`.

``open_table(path)`` infers everything once and writes it into ``OwnData.schema``: the
file's format, each column's type (numeric, categorical, or an id / free text / empty /
constant column that is dropped), the target and its task, and every encoder's state fitted
on the training split only (medians, means and deviations, one-hot levels, the character
vocabulary). ``open_table(path, schema=schema)`` infers nothing: it applies that schema to
the file and rebuilds the same tensors, so ``eval`` and ``--resume`` never re-infer from a
file that changed.

Reading stays vectorised for million-row files: one pass over the bytes with numpy checks
what pandas would silently accept (NUL bytes, non-UTF-8 text, rows with too few fields),
then pandas parses, and every encoder works on whole columns.

Ids in a sequence table (``text=``): 0 is padding, ``1..len(chars)`` the characters seen in
training in code-point order, and ``vocab_size - 1`` stands for any character training never
showed. ``OwnData.vocab`` holds all of them, the last one being U+FFFD for "unknown", so
``vocab[i]`` is always the character of id ``i + 1``.
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dltui.config import OWN_TASKS, choose, suggest
from dltui.data import split_indices
from dltui.data.own import OwnData
from dltui.data.tablefile import _fail, _Format, _inspect

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SCHEMA_VERSION = 1
MAX_LEVELS = 20  # one-hot columns per categorical feature; the other levels share one "other" column
MIN_LEVEL_SHARE = 0.01  # a level in fewer training rows than this is "other"
HIGH_CARDINALITY = 0.5  # a string column with more distinct values than this share of its cells is dropped
MAX_INT_CLASSES = 20  # an integer target with at most this many values is classes, beyond it a regression
MAX_CLASSES = 1000
MAX_TEXT_LEN = 64  # characters a sequence keeps
NUMERIC_SHARE = 0.9  # a text column whose cells are numbers this often is numeric (the rest missing)
UNKNOWN = "\ufffd"  # the vocabulary's last character: any character training did not show
TEXT_BLOCK = 1 << 16  # texts encoded per step
# id, row_id, "user id", PassengerId, userID, index, key
_ID_NAME = re.compile(r"(?i:(^|[_\s.-])(id|idx|index|key)$)|[a-z0-9](Id|ID)$")


def open_table(
    path: Path,
    *,
    target: str | None = None,
    text: str | None = None,
    task: str | None = None,
    test: Path | None = None,
    seed: int = 0,
    schema: dict[str, Any] | None = None,
) -> OwnData:
    """Read the table at ``path`` into train/test tensors.

    ``target``/``text`` name a column or give its 0-based index ("3", "-1"); the target
    defaults to the last column. ``task`` overrides the task inferred from the target.
    ``test`` is a file with the same columns holding the test split; without it the rows are
    split 80/20 by ``seed``. With ``schema`` (an earlier result's ``schema``) nothing is
    inferred and ``target``, ``text``, ``task`` and ``seed`` are not read: the schema's own
    are used, and ``test`` only where the schema's split was a test file (default: the
    file it named). Raises DataError (ConfigError for a bad ``task``) in one line.
    """
    path = Path(path)
    if schema is not None:  # a copy: the caller's schema (a saved config's) stays as it was
        return _Build(path, copy.deepcopy(schema)).run(None if test is None else Path(test))
    if task is not None:
        task = choose("task", task, OWN_TASKS)
    b = _Build(path, {"version": SCHEMA_VERSION, "reader": "table", "file": path.name})
    return b.infer(target=target, text=text, task=task, test=None if test is None else Path(test), seed=seed)


# --- columns: what each one is ---------------------------------------------------------------


def _numbers(s: pd.Series) -> pd.Series:
    """A column as float64; text that is no number, and +-inf, become missing."""
    import numpy as np
    import pandas as pd
    from pandas.api import types

    if types.is_bool_dtype(s) or types.is_numeric_dtype(s):
        v = s.astype("float64")
    else:
        t = s.astype(str).str.strip()
        low = t.str.lower()
        v = pd.to_numeric(t.mask(low == "true", "1").mask(low == "false", "0"), errors="coerce").astype("float64")
    return v.mask(np.isinf(v.to_numpy()))


def _strings(s: pd.Series) -> pd.Series:
    """A column as strings (missing stays missing)."""
    from pandas.api import types

    if types.is_string_dtype(s) or types.is_object_dtype(s):
        return s
    return s.astype(str).where(s.notna())


def _number_name(v: float) -> str:
    return str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(float(v))


def _short(items: list[str], k: int = 8) -> str:
    return ", ".join(items[:k]) + (f", … ({len(items)} in all)" if len(items) > k else "")


def _column_type(name: str, s: pd.Series) -> dict[str, Any]:
    """What a feature column is: numeric | categorical, or a dropped type with its reason."""
    import numpy as np
    from pandas.api import types

    n, filled = len(s), int(s.notna().sum())
    if filled == 0:
        return {"type": "empty", "reason": "no values"}
    coerce = False
    if not (types.is_bool_dtype(s) or types.is_numeric_dtype(s)):
        head = s.dropna().head(1000)
        if _numbers(head).notna().mean() >= NUMERIC_SHARE:
            nums = _numbers(s)
            if nums.notna().sum() >= NUMERIC_SHARE * filled:
                coerce = True
    if coerce or types.is_bool_dtype(s) or types.is_numeric_dtype(s):
        v = _numbers(s).to_numpy()
        seen = v[~np.isnan(v)]
        if seen.size == 0:
            return {"type": "empty", "reason": "no numbers"}
        lo, hi = float(seen.min()), float(seen.max())
        if lo == hi and seen.size == n:
            return {"type": "constant", "reason": f"one value ({_number_name(lo)}) in every row"}
        integers = types.is_integer_dtype(s) or bool(np.all(seen == np.floor(seen)))
        id_like = hi - lo == n - 1 or _ID_NAME.search(name)  # 1..n in some order, or named like an id
        if seen.size == n and integers and id_like and np.unique(seen).size == n:
            return {"type": "id", "reason": "id: a different integer in every row"}
        out: dict[str, Any] = {"type": "numeric"}
        if coerce:
            bad = s.notna() & np.isnan(v)
            out.update(coerce=True, not_numbers=int(bad.sum()), examples=sorted(map(str, s[bad].unique()[:3])))
        return out
    distinct = int(s.nunique())
    if distinct == 1 and filled == n:
        return {"type": "constant", "reason": f"one value ({s.iloc[0]!r}) in every row"}
    if distinct == filled and filled > 1:
        spaced = s.str.contains(r"\s", regex=True, na=False).mean() >= 0.5
        if spaced:
            return {"type": "text", "reason": "free text: a different value in every row"}
        return {"type": "id", "reason": "id: a different value in every row"}
    if distinct > MAX_LEVELS and distinct > HIGH_CARDINALITY * filled:
        return {"type": "text", "reason": f"high-cardinality text: {distinct} distinct values in {filled} cells"}
    return {"type": "categorical", "levels": distinct}


def _resolve(path: Path, spec: str, columns: list[str], flag: str) -> str:
    """A column given by name or by 0-based index (negative counts from the end)."""
    spec = str(spec)
    if spec in columns:
        return spec
    if spec.strip() in columns:
        return spec.strip()
    if re.fullmatch(r"-?\d+", spec.strip()):
        i = int(spec)
        if -len(columns) <= i < len(columns):
            return columns[i]
        _fail(path, f"{flag} {i}: no such column (the file has {len(columns)}, numbered 0..{len(columns) - 1})")
    _fail(path, f"{flag}: no column '{spec}'{suggest(spec, columns)} (columns: {_short(columns)})")


def _target(path: Path, name: str, s: pd.Series, task: str | None, sequence: bool) -> dict[str, Any]:
    """The target's task, classes and how its values map to labels."""
    import numpy as np
    from pandas.api import types

    if types.is_bool_dtype(s) or types.is_numeric_dtype(s):
        v = _numbers(s).dropna().to_numpy()
        if v.size == 0:
            _fail(path, f"target '{name}' has no values")
        values = np.unique(v)
        kind = "bool" if types.is_bool_dtype(s) else "number"
        integers = bool(np.all(values == np.floor(values)))
        inferred = "classification" if kind == "bool" or (integers and len(values) <= MAX_INT_CLASSES) else "regression"
        classes = [str(bool(x)) if kind == "bool" else _number_name(x) for x in values]
        class_values = [float(x) for x in values]
    else:
        t = s.dropna()
        if t.empty:
            _fail(path, f"target '{name}' has no values")
        kind, inferred = "text", "classification"
        classes, class_values = sorted(map(str, t.unique())), []
        if task == "regression":
            _fail(path, f"target '{name}' holds text (e.g. {classes[0]!r}): it cannot be a regression target")
    if len(classes) < 2:
        _fail(path, f"target '{name}' has one value ({classes[0]}) in every row: nothing to learn")
    if sequence:
        if (task or inferred) != "classification":
            why = f"--task {task}" if task else f"target '{name}' (numbers, not class labels)"
            _fail(path, f"a --text table is classified by sequence models: {why} cannot be used with it")
        task = "sequence"
    elif task is None:  # an explicit --task classification keeps two outputs for two classes
        task = "binary" if inferred == "classification" and len(classes) == 2 else inferred
    if task == "binary" and len(classes) != 2:
        _fail(path, f"target '{name}' has {len(classes)} classes: --task binary needs exactly 2")
    if task in ("classification", "sequence", "binary") and len(classes) > MAX_CLASSES:
        _fail(path, f"target '{name}' has {len(classes)} distinct values: too many classes (at most {MAX_CLASSES})")
    rows = int(s.notna().sum())
    if task in ("classification", "sequence") and kind == "number" and len(classes) > max(MAX_INT_CLASSES, rows // 2):
        # forced onto measured numbers: nearly every row its own class, nothing to generalise
        _fail(path, f"target '{name}' has {len(classes)} distinct numbers in {rows} rows: too many to be classes "
                    "(use --task regression)")  # fmt: skip
    out: dict[str, Any] = {"column": name, "values": kind, "task": task}
    if task != "regression":
        out.update(classes=classes, class_values=class_values)
    return out


# --- encoders: fitted on the training split, applied to any rows ---------------------------


def _fit_numeric(name: str, s: pd.Series, coerce: bool) -> dict[str, Any]:
    v = _numbers(s)
    seen = v.dropna()
    fill = float(seen.median()) if len(seen) else 0.0
    filled = v.fillna(fill)
    mean, std = float(filled.mean()), float(filled.std()) if len(filled) > 1 else 1.0
    if not math.isfinite(std) or std < 1e-8:
        std = 1.0
    out = {"column": name, "type": "numeric", "fill": fill, "mean": mean, "std": std, "indicator": bool(v.isna().any())}
    return out | ({"coerce": True} if coerce else {})


def _fit_categorical(name: str, s: pd.Series) -> dict[str, Any] | None:
    """Levels: the MAX_LEVELS most frequent in training that reach MIN_LEVEL_SHARE of its
    rows, sorted; None when no level does (the column is then dropped)."""
    t = _strings(s)
    counts = t.value_counts().rename_axis("level").reset_index(name="n")
    counts = counts.sort_values(["n", "level"], ascending=[False, True], kind="stable")
    kept = counts[counts["n"] >= max(1, math.ceil(MIN_LEVEL_SHARE * len(t)))].head(MAX_LEVELS)
    if kept.empty:
        return None
    levels = [str(x) for x in kept["level"]]
    return {
        "column": name,
        "type": "categorical",
        "levels": sorted(levels),
        "fill": levels[0],  # the most frequent level
        "other": len(counts) > len(kept),
        "indicator": bool(t.isna().any()),
    }


def _feature_names(features: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for f in features:
        c = f["column"]
        if f["type"] == "numeric":
            names.append(c)
        else:
            names += [f"{c}={level}" for level in f["levels"]] + ([f"{c}=(other)"] if f["other"] else [])
        if f["indicator"]:
            names.append(f"{c}_missing")
    return names


def _encode_vector(
    path: Path, df: pd.DataFrame, features: list[dict[str, Any]], width: int
) -> tuple[np.ndarray, dict[str, int], list[str]]:
    """float32 (rows, width) features, the missing cells per column, and notes. A numeric
    column that now holds text (another file, a changed one) fails when most of its cells
    do; a few such cells are read as missing, with a note."""
    import numpy as np
    import pandas as pd

    n = len(df)
    out = np.zeros((n, width), np.float32)
    rows = np.arange(n)
    missing: dict[str, int] = {}
    notes: list[str] = []
    j = 0
    for f in features:
        col = df[f["column"]]
        if f["type"] == "numeric":
            v = _numbers(col)
            miss = v.isna().to_numpy()
            if not f.get("coerce") and (bad := col.notna().to_numpy() & miss).any():
                example, k = col[bad].iloc[0], int(bad.sum())
                if k > 0.5 * col.notna().sum():
                    _fail(path, f"column '{f['column']}' holds text (e.g. '{example}') where numbers were")
                cells = f"{k:,} non-numeric cell{'s' * (k != 1)}"
                notes.append(f"{path.name}: {f['column']} has {cells} (e.g. '{example}'), read as missing")
            out[:, j] = (v.to_numpy(na_value=f["fill"]) - f["mean"]) / f["std"]
            j += 1
        else:
            t = _strings(col)
            miss = t.isna().to_numpy()
            levels = f["levels"]
            codes = pd.Index(levels).get_indexer(t)  # -1: a level not kept, or missing
            codes[miss] = levels.index(f["fill"])
            hit = codes >= 0
            out[rows[hit], j + codes[hit]] = 1.0
            j += len(levels)
            if f["other"]:
                out[~hit, j] = 1.0
                j += 1
        if f["indicator"]:
            out[:, j] = miss
            j += 1
        if (k := int(miss.sum())) > 0:
            missing[f["column"]] = k
    return out, missing, notes


def _clean_texts(s: pd.Series) -> pd.Series:
    """Texts stripped and in NFC (é one character, as typed, not e + accent); each string
    op is a Python call per cell, so NFC is checked on all the text at once first."""
    import unicodedata

    t = _strings(s).str.strip()
    if not unicodedata.is_normalized("NFC", "".join(t.dropna().tolist())):
        t = t.str.normalize("NFC")
    return t


def _fit_text(texts: pd.Series) -> dict[str, Any]:
    chars = sorted(set("".join(texts.tolist())) - {UNKNOWN})
    return {"vocab": "".join(chars) + UNKNOWN, "max_len": max(1, min(int(texts.str.len().max()), MAX_TEXT_LEN))}


def _encode_text(texts: pd.Series, vocab: str, max_len: int) -> tuple[np.ndarray, int]:
    """int64 (rows, max_len) ids, left-aligned, 0-padded; and how many texts were cut.
    Works through TEXT_BLOCK rows at a time: the code points and lookups of a million
    texts at once would take several times the result's memory."""
    import numpy as np

    cut = int((texts.str.len() > max_len).sum())
    known = np.array([ord(c) for c in vocab[:-1]], np.uint32)  # code-point order: ids 1..len(known)
    out = np.zeros((len(texts), max_len), np.int64)
    for start in range(0, len(texts), TEXT_BLOCK):
        part = texts.iloc[start : start + TEXT_BLOCK].str.slice(0, max_len)
        points = part.to_numpy(dtype=f"<U{max_len}").view(np.uint32).reshape(len(part), max_len)
        at = np.minimum(np.searchsorted(known, points), max(len(known) - 1, 0))
        found = known[at] == points if len(known) else np.zeros(points.shape, bool)
        ids = out[start : start + len(part)]
        ids[...] = np.where(found, at + 1, len(known) + 1)
        ids[points == 0] = 0
    return out, cut


def _labels(path: Path, s: pd.Series, target: dict[str, Any]) -> np.ndarray:
    import numpy as np
    import pandas as pd

    task = target["task"]
    if task == "regression":
        return _numbers(s).to_numpy(np.float32)
    if target["values"] == "text":
        codes = pd.Index(target["classes"]).get_indexer(_strings(s))
        bad = codes < 0
    else:
        v = _numbers(s).to_numpy()
        values = np.asarray(target["class_values"])
        codes = np.minimum(np.searchsorted(values, v), len(values) - 1)
        bad = values[codes] != v
    if bad.any():
        value = s[bad].iloc[0]
        _fail(path, f"target value '{value}' is not one of the classes ({_short(target['classes'])})")
    return codes.astype(np.float32 if task == "binary" else np.int64)


# --- the build: infer once, or apply a schema ----------------------------------------------


class _Build:
    """One open_table call: the schema it fills or applies, and what the report tells."""

    def __init__(self, path: Path, schema: dict[str, Any]):
        self.path = path
        self.schema = schema
        self.notes: list[str] = []
        self.dropped_rows: dict[str, int] = {}  # file name -> rows without a target / text

    def _read(self, path: Path, fmt: _Format, usecols: list[str] | None, as_text: list[str]) -> pd.DataFrame:
        import pandas as pd

        try:
            return pd.read_csv(
                path,
                sep=fmt.delimiter,
                header=0 if fmt.header else None,
                names=fmt.names,
                usecols=usecols,
                dtype=dict.fromkeys(as_text, str) or None,
                encoding=fmt.encoding,
                compression="gzip" if fmt.gz else None,
                skipinitialspace=True,
                index_col=False,  # a short header must not turn the first column into an index
                low_memory=False,  # one dtype per column, not one per chunk
            )
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError, OSError, EOFError) as exc:
            _fail(path, f"cannot be read as a table ({str(exc).strip().splitlines()[0]})")

    def _str_columns(self) -> list[str]:
        """Columns to read as text whatever they look like, so levels match across files."""
        s = self.schema
        cols = [f["column"] for f in s["features"] if f["type"] == "categorical"]
        if s["text"]:
            cols.append(s["text"]["column"])
        if s["target"]["values"] == "text":
            cols.append(s["target"]["column"])
        return cols

    def _open(self, path: Path, fmt_json: dict[str, Any] | None) -> tuple[pd.DataFrame, _Format]:
        """Read a file the schema applies to, in the format given (a delimiter None is
        guessed): only the columns it uses."""
        fmt = _inspect(path, fmt_json["delimiter"], fmt_json["header"])
        self.notes += fmt.notes
        s = self.schema
        need = [f["column"] for f in s["features"]] + [s["target"]["column"]]
        need += [s["text"]["column"]] if s["text"] else []
        if missing := [c for c in dict.fromkeys(need) if c not in fmt.names]:
            _fail(path, f"no column '{missing[0]}', which the table's schema uses (columns: {_short(fmt.names)})")
        return self._read(path, fmt, list(dict.fromkeys(need)), self._str_columns()), fmt

    def _keep_rows(self, path: Path, df: pd.DataFrame) -> pd.DataFrame:
        """Rows without a target (or without text, for a sequence table) are left out; the
        text column is cleaned here, once."""
        s = self.schema
        t = df[s["target"]["column"]]
        gone = (_numbers(t).isna() if s["target"]["values"] != "text" else t.isna()).to_numpy()
        if s["text"]:
            texts = _clean_texts(df[s["text"]["column"]])
            df = df.assign(**{s["text"]["column"]: texts})
            gone = gone | (texts.isna() | (texts == "")).to_numpy()  # to_numpy() may be read-only
        if gone.all():
            _fail(path, f"no row has a value in target column '{s['target']['column']}'")
        if gone.any():
            self.dropped_rows[path.name] = int(gone.sum())
            return df[~gone].reset_index(drop=True)
        return df

    def _split(self, df: pd.DataFrame, test: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        split = self.schema["split"]
        if split["method"] == "file":
            test = test or Path(split["test"])
            split["test"] = str(test.resolve())
            test_df, fmt = self._open(test, split["format"])
            split["format"] = fmt.as_json()
            return df, self._keep_rows(test, test_df)
        tr, te = split_indices(len(df), split["seed"])
        if len(tr) == 0 or len(te) == 0:
            _fail(self.path, f"only {len(df)} usable rows: too few to split into train and test")
        return df.take(tr.numpy()), df.take(te.numpy())

    def infer(self, *, target: str | None, text: str | None, task: str | None, test: Path | None, seed: int) -> OwnData:
        path, s = self.path, self.schema
        fmt = _inspect(path)
        self.notes += fmt.notes
        df = self._read(path, fmt, None, [])
        columns = list(df.columns)
        s.update(format=fmt.as_json(), rows=len(df), columns={})
        if len(columns) == 1:
            _fail(path, f"has one column ('{columns[0]}'): there is nothing to learn it from (wrong delimiter?)")
        text_col = _resolve(path, text, columns, "--text") if text is not None else None
        if target is not None:
            target_col = _resolve(path, target, columns, "--target")
        else:
            target_col = [c for c in columns if c != text_col][-1]
        if target_col == text_col:
            _fail(path, f"--target and --text both name column '{target_col}'")
        if text_col is not None and not (df[text_col].isna().all() or _is_text(df[text_col])):
            _fail(path, f"--text: column '{text_col}' holds numbers, not text")
        keep_target = df[target_col].notna() if text_col is None else df[target_col].notna() & df[text_col].notna()
        s["target"] = _target(path, target_col, df.loc[keep_target, target_col], task, text_col is not None)
        s["task"] = s["target"]["task"]
        s["text"] = {"column": text_col} if text_col else None
        for c in columns:
            if c == target_col:
                s["columns"][c] = {"type": "target"}
            elif text_col is not None:
                s["columns"][c] = {"type": "text input"} if c == text_col else {"type": "ignored"}
            else:
                s["columns"][c] = _column_type(c, df[c])
        s["features"] = []
        s["split"] = (
            {"method": "seed", "seed": int(seed), "test_fraction": 0.2}
            if test is None
            # the test file has the training file's columns, so its header too; its delimiter is its own
            else {"method": "file", "test": str(test.resolve()), "format": {"delimiter": None, "header": fmt.header}}
        )
        df = self._keep_rows(path, df)
        # a test file is read once the columns' types are known: its levels are read as text
        train, test_df = self._split(df, None) if test is None else (df, None)
        del df
        # every encoder is fitted on the training split only
        for c, info in s["columns"].items():
            if info["type"] == "numeric":
                s["features"].append(_fit_numeric(c, train[c], info.get("coerce", False)))
            elif info["type"] == "categorical":
                if (f := _fit_categorical(c, train[c])) is None:
                    info.update(type="rare", reason=f"no level reaches {MIN_LEVEL_SHARE:.0%} of the training rows")
                else:
                    s["features"].append(f)
        if text_col:
            s["text"].update(_fit_text(train[text_col]))
        elif not s["features"]:
            why = [f"{c} ({i['reason'].split(':')[0]})" for c, i in s["columns"].items() if "reason" in i]
            _fail(path, f"every feature column was dropped: {_short(why) or 'there is only the target'}")
        if test_df is None:
            train, test_df = self._split(train, test)
        return self._finish(train, test_df)

    def run(self, test: Path | None) -> OwnData:
        """Apply a schema from an earlier call: no inference."""
        s = self.schema
        if not isinstance(s, dict) or s.get("reader") != "table" or s.get("version") != SCHEMA_VERSION:
            _fail(self.path, "the saved table schema is from another reader or version: it cannot be applied")
        try:
            df = self._open(self.path, s["format"])[0]
            if len(df) != s["rows"]:
                self.notes.append(f"{self.path.name} has {len(df)} rows, {s['rows']} when its schema was made")
            df = self._keep_rows(self.path, df)
            train, test_df = self._split(df, test)
        except KeyError as exc:
            _fail(self.path, f"the saved table schema lacks {exc}: it cannot be applied")
        return self._finish(train, test_df)

    def _finish(self, train: pd.DataFrame, test_df: pd.DataFrame) -> OwnData:
        import torch

        s = self.schema
        target = s["target"]
        y_tr = _labels(self.path, train[target["column"]], target)
        test_path = Path(s["split"].get("test", self.path))
        y_te = _labels(test_path, test_df[target["column"]], target)
        missing: dict[str, int] = {}
        cut = 0
        if s["text"]:
            vocab, max_len = s["text"]["vocab"], s["text"]["max_len"]
            (x_tr, c1), (x_te, c2) = (_encode_text(d[s["text"]["column"]], vocab, max_len) for d in (train, test_df))
            cut = c1 + c2
            kind, shape = "sequence", (max_len,)
        else:
            names = _feature_names(s["features"])
            s["feature_names"] = names
            x_tr, m1, n1 = _encode_vector(self.path, train, s["features"], len(names))
            x_te, m2, n2 = _encode_vector(test_path, test_df, s["features"], len(names))
            missing = {c: m1.get(c, 0) + m2.get(c, 0) for c in dict.fromkeys([*m1, *m2])}
            self.notes += n1 + n2
            kind, shape = "vector", (len(names),)
        split = s["split"]
        if split["method"] == "seed":
            split_text = f"80/20 by --seed {split['seed']}"
        else:
            split_text = f"--test {Path(split['test']).name}"
        data = OwnData(
            task=s["task"],
            kind=kind,
            input_shape=shape,
            classes=tuple(target.get("classes", ())),
            x_train=torch.from_numpy(x_tr),
            y_train=torch.from_numpy(y_tr),
            x_test=torch.from_numpy(x_te),
            y_test=torch.from_numpy(y_te),
            schema=s,
            split=split_text,
        )
        if s["text"]:
            data.vocab, data.vocab_size = s["text"]["vocab"], len(s["text"]["vocab"]) + 1
        data.report, notes = _report(self.path, s, data, missing, self.dropped_rows, cut)
        data.notes = self.notes + notes
        return data


def _is_text(s: pd.Series) -> bool:
    from pandas.api import types

    return types.is_string_dtype(s) or types.is_object_dtype(s)


# --- what `dltui inspect` shows and what a run says once -------------------------------------


def _describe(name: str, info: dict[str, Any], s: dict[str, Any]) -> str:
    t = info["type"]
    if t == "categorical":
        return f"categorical ({info['levels']} levels)"
    if t == "numeric":
        return "numeric" + (f" ({n} non-numbers read as missing)" if (n := info.get("not_numbers")) else "")
    if t == "target":
        return f"target ({s['task']})"
    if t == "text input":
        return f"text input (up to {s['text']['max_len']} characters)"
    if t == "ignored":
        return "ignored (a --text table uses only the text and the target)"
    return f"dropped ({info['reason']})"


def _report(
    path: Path, s: dict[str, Any], data: OwnData, missing: dict[str, int], dropped_rows: dict[str, int], cut: int
) -> tuple[list[tuple[str, str]], list[str]]:
    import torch

    fmt = s["format"]
    delim = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}.get(fmt["delimiter"], repr(fmt["delimiter"]))
    how = f"{delim}-separated, {'a header row' if fmt['header'] else 'no header (columns col0..)'}, {fmt['encoding']}"
    report = [("file", f"{path} ({how}{', gzip' if fmt['gzip'] else ''})")]
    rows = f"{s['rows']:,}"
    if dropped_rows:
        rows += " (" + ", ".join(f"{k}: {n:,} without a target or text left out" for k, n in dropped_rows.items()) + ")"
    used = 1 if s["text"] else len(s["features"])
    report += [("rows", rows), ("columns", f"{len(s['columns'])}: {used} feeding the model, 1 the target")]
    report += [(f"  {c}", _describe(c, info, s)) for c, info in s["columns"].items()]
    dropped = [f"{c} ({info['reason']})" for c, info in s["columns"].items() if "reason" in info]
    report.append(("dropped", "; ".join(dropped) or "none"))
    fills = {f["column"]: f for f in s["features"]}
    imputed = [
        f"{c}: {k:,} filled with the training {'median' if fills[c]['type'] == 'numeric' else 'mode'} "
        f"{fills[c]['fill']!r}" + (f", flagged in {c}_missing" if fills[c]["indicator"] else "")
        for c, k in missing.items()
    ]
    report.append(("missing", "; ".join(imputed) or "none"))
    target = s["target"]
    if s["task"] == "regression":
        y = data.y_train
        spread = f"{y.min().item():.4g} .. {y.max().item():.4g}, mean {y.mean().item():.4g}"
        report.append(("target", f"{target['column']}: regression, {spread} (in its own units, not standardised)"))
    else:
        report.append(("target", f"{target['column']}: {s['task']}, {len(data.classes)} classes"))
        counts = torch.bincount(torch.cat([data.y_train, data.y_test]).long(), minlength=len(data.classes))
        shown = [f"{c} {int(n):,}" for c, n in zip(data.classes, counts, strict=True)]
        report.append(("classes", " · ".join(shown[:20]) + (f" · … ({len(shown)} in all)" if len(shown) > 20 else "")))
    report.append(("split", f"{data.split}: {len(data.y_train):,} train / {len(data.y_test):,} test"))
    if s["text"]:
        v = len(s["text"]["vocab"]) - 1
        ids = f"{v} characters + 1 unknown, 0 = padding"
        report.append(("input", f"sequence {data.input_shape} of character ids: {ids}"))
    else:
        report.append(("input", f"vector {data.input_shape}: {_short(s['feature_names'])}"))

    notes: list[str] = []
    if dropped:
        notes.append("dropped columns: " + "; ".join(dropped))
    if imputed:
        notes.append("missing values: " + "; ".join(imputed))
    if grouped := [f["column"] for f in s["features"] if f["type"] == "categorical" and f["other"]]:
        notes.append(f"rare levels grouped as '(other)' in: {', '.join(grouped)}")
    if coerced := [
        f"{c} ({i['not_numbers']}, e.g. {i['examples'][0]!r})" for c, i in s["columns"].items() if i.get("not_numbers")
    ]:
        notes.append("cells that are no number read as missing in: " + "; ".join(coerced))
    for name, n in dropped_rows.items():
        notes.append(f"{name}: {n:,} rows without a target{' or text' if s['text'] else ''} left out")
    if ignored := [c for c, i in s["columns"].items() if i["type"] == "ignored"]:
        notes.append(f"columns not used by a --text table: {_short(ignored)}")
    if cut:
        notes.append(f"{cut:,} texts longer than {s['text']['max_len']} characters cut")
    return report, notes
