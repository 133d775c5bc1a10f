"""Users' own tables (dltui.data.table.open_table), on small files written into tmp_path."""

from __future__ import annotations

import csv
import gzip
import json
import math

import numpy as np
import pytest
import torch

from dltui.data import split_indices, tablefile
from dltui.data.table import open_table
from dltui.errors import ConfigError, DataError

COUNTRIES = ("Italian", "Polish", "German", "Japanese")
NAMES = {
    "Italian": ["Abandonato", "Rossi", "Bianchi", "Esposito", "Romano", "Gallo"],
    "Polish": ["Ślusarczyk", "Nowak", "Kowalski", "Wójcik", "Kamiński", "Łukasz"],
    "German": ["Müller", "Schmidt", "Schneider", "Fischer", "Weiß", "Becker"],
    "Japanese": ["Abe", "Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe"],
}


def write_rows(path, rows, delimiter=","):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", newline="", encoding="utf-8") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def titanic_rows(n=200, seed=1):
    r = np.random.default_rng(seed)
    rows = [
        [
            "PassengerId",
            "Survived",
            "Pclass",
            "Name",
            "Sex",
            "Age",
            "SibSp",
            "Parch",
            "Ticket",
            "Fare",
            "Cabin",
            "Embarked",
        ]
    ]
    tickets = [
        f"{r.choice(['A/5', 'PC', 'STON/O2.', ''])} {r.integers(1000, 99999)}".strip() for _ in range(n * 3 // 4)
    ]
    for i in range(n):
        sex = str(r.choice(["male", "female"]))
        survived = int(r.random() < (0.75 if sex == "female" else 0.2))
        age = "" if r.random() < 0.2 else f"{r.uniform(1, 70):.0f}"
        cabin = f"C{r.integers(1, 200)}" if r.random() < 0.25 else ""
        embarked = "" if i in (5, 60) else str(r.choice(["S", "C", "Q"], p=[0.7, 0.2, 0.1]))
        name = f"Surname{i}, {'Mrs.' if sex == 'female' else 'Mr.'} Given {i}"
        ticket = tickets[i] if i < len(tickets) else str(r.choice(tickets))
        rows.append(
            [i + 1, survived, int(r.integers(1, 4)), name, sex, age, int(r.integers(0, 4)), int(r.integers(0, 3))]
            + [ticket, f"{r.uniform(5, 200):.2f}", cabin, embarked]
        )
    return rows


def diabetes_rows(n=759, seed=2):
    r = np.random.default_rng(seed)
    x = r.uniform(-1, 1, (n, 8)).round(6)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return [[*map(str, row), str(label)] for row, label in zip(x, y, strict=True)]


def names_rows(repeat=6, extra=()):
    rows = [[name, c] for _ in range(repeat) for c in COUNTRIES for name in NAMES[c]]
    return rows + list(extra)


def tensors(d):
    return d.x_train, d.y_train, d.x_test, d.y_test


def same(a, b):
    return all(torch.equal(p, q) for p, q in zip(tensors(a), tensors(b), strict=True))


def json_round(schema):
    return json.loads(json.dumps(schema))


def one_line_error(exc_info, name):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    assert name in msg, msg
    return msg


# --- formats -------------------------------------------------------------------------------


def test_header_and_no_header_give_the_same_tensors(tmp_path):
    r = np.random.default_rng(0)
    body = [[f"{a:.3f}", f"{b:.3f}", str(int(a > b))] for a, b in r.normal(size=(60, 2))]
    with_header = open_table(write_rows(tmp_path / "h.csv", [["alpha", "beta", "label"], *body]))
    without = open_table(write_rows(tmp_path / "n.csv", body))
    assert with_header.schema["format"]["header"] is True
    assert without.schema["format"]["header"] is False
    assert list(with_header.schema["columns"]) == ["alpha", "beta", "label"]
    assert list(without.schema["columns"]) == ["col0", "col1", "col2"]
    assert same(with_header, without)
    assert with_header.task == "binary" and with_header.input_shape == (2,)
    assert with_header.schema["rows"] == without.schema["rows"] == 60


def test_diabetes_like_headerless_file_is_binary_on_the_last_column(tmp_path):
    d = open_table(write_rows(tmp_path / "diabetes.csv", diabetes_rows()))
    assert d.task == "binary" and d.kind == "vector"
    assert d.input_shape == (8,) and d.classes == ("0", "1")
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.float32
    assert (len(d.y_train), len(d.y_test)) == (607, 152)
    assert set(d.y_train.unique().tolist()) == {0.0, 1.0}
    assert d.schema["target"]["column"] == "col8"
    assert d.split == "80/20 by --seed 0"
    # standardised with the training split's statistics
    assert torch.allclose(d.x_train.mean(0), torch.zeros(8), atol=1e-5)
    assert torch.allclose(d.x_train.std(0), torch.ones(8), atol=1e-4)


def test_tsv_gzip_and_sniffed_txt_read_like_the_csv(tmp_path):
    rows = titanic_rows(80)
    ref = open_table(write_rows(tmp_path / "t.csv", rows), target="Survived")
    for name, delimiter in (("t.tsv", "\t"), ("t.csv.gz", ","), ("t.tsv.gz", "\t"), ("t.txt", ";"), ("t2.txt", "|")):
        d = open_table(write_rows(tmp_path / name, rows, delimiter), target="Survived")
        assert d.schema["format"]["delimiter"] == delimiter, name
        assert d.schema["format"]["gzip"] is name.endswith(".gz")
        assert same(ref, d), name


def test_quoted_delimiters_newlines_and_stray_quotes_are_not_ragged(tmp_path, monkeypatch):
    # tiny scan chunks: the quote parity and open records must carry across chunk ends
    monkeypatch.setattr(tablefile, "CHUNK", 7)
    rows = [["note", "height", "y"]] + [
        [f'said "hi, {i % 4}"\nthen left', str(150 + i % 17), str(i % 2)] for i in range(30)
    ]
    d = open_table(write_rows(tmp_path / "quoted.csv", rows))
    assert d.schema["rows"] == 30
    (tmp_path / "stray.csv").write_text("h,w,y\n" + "".join(f"5'{i % 3}\",{i % 7},{i % 2}\n" for i in range(30)))
    assert open_table(tmp_path / "stray.csv").schema["rows"] == 30  # a quote inside a field is a character


def test_bom_and_crlf(tmp_path):
    text = "a,b,label\r\n" + "".join(f"{i},{i * 2 % 7},{i % 3}\r\n" for i in range(40))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    d = open_table(tmp_path / "bom.csv")
    assert list(d.schema["columns"]) == ["a", "b", "label"]
    assert d.task == "classification" and d.classes == ("0", "1", "2")


# --- columns -------------------------------------------------------------------------------


def mixed_table(tmp_path, n=300, seed=3):
    r = np.random.default_rng(seed)
    rows = [["size", "colour", "town", "score", "y"]]
    for i in range(n):
        size = "" if r.random() < 0.1 else f"{r.normal(50, 10):.2f}"
        colour = "" if r.random() < 0.1 else str(r.choice(["red", "green", "blue"]))
        town = "rareville" if i == 0 else str(r.choice(["north", "south"]))  # one row of 300: under 1 %
        score = "?" if i % 25 == 0 else f"{r.integers(0, 10)}"  # a number column with "?" for missing
        rows.append([size, colour, town, score, str(r.choice(["low", "high"]))])
    return write_rows(tmp_path / "mixed.csv", rows), rows


def test_categorical_and_missing_values_imputed_from_training_rows(tmp_path):
    path, rows = mixed_table(tmp_path)
    d = open_table(path)
    s = d.schema
    names = s["feature_names"]
    assert "size_missing" in names and "colour_missing" in names and "town_missing" not in names
    assert {"colour=blue", "colour=green", "colour=red", "town=north", "town=south", "town=(other)"} <= set(names)
    assert "town=rareville" not in names
    assert s["columns"]["score"] == {"type": "numeric", "coerce": True, "not_numbers": 12, "examples": ["?"]}
    assert d.input_shape == (len(names),) and d.x_train.shape[1] == len(names)

    # fills and standardisation come from the training rows only
    tr, _ = split_indices(len(rows) - 1, 0)
    train = [rows[1 + i] for i in tr.tolist()]
    sizes = np.array([float(r[0]) for r in train if r[0]])
    size = next(f for f in s["features"] if f["column"] == "size")
    assert size["fill"] == pytest.approx(float(np.median(sizes)))
    filled = np.array([float(r[0]) if r[0] else np.median(sizes) for r in train])
    assert size["mean"] == pytest.approx(filled.mean()) and size["std"] == pytest.approx(filled.std(ddof=1))
    colours = [r[1] for r in train if r[1]]
    colour = next(f for f in s["features"] if f["column"] == "colour")
    assert colour["fill"] == max(set(colours), key=lambda c: (colours.count(c), c))

    # a row whose colour was missing: the indicator is 1 and the fill's one-hot is set
    x = d.x_train
    j = names.index
    missing_rows = [k for k, r in enumerate(train) if not r[1]]
    assert missing_rows and all(x[k, j("colour_missing")] == 1 for k in missing_rows)
    assert all(x[k, j(f"colour={colour['fill']}")] == 1 for k in missing_rows)
    assert x[:, [j("colour=blue"), j("colour=green"), j("colour=red")]].sum(1).eq(1).all()
    assert any("size" in n and "colour" in n for n in d.notes if n.startswith("missing values:"))
    assert any("town" in n for n in d.notes if "other" in n)


def test_id_and_free_text_columns_are_dropped_with_reasons(tmp_path):
    r = np.random.default_rng(4)
    rows = [["row_id", "code", "comment", "ref", "value", "visits", "label"]]
    refs = [f"R{k}" for k in range(70)]
    for i in range(100):
        words = " ".join(r.choice(["good", "bad", "fine", "odd", "new"], 3))
        ref = refs[i] if i < 70 else refs[i - 70]
        # row_id: unique but not 1..n, an id by its name; visits: unique integers, a feature
        rows.append([1000 + 7 * i, f"X{i:04d}", f"{words} {i}", ref, f"{r.normal():.3f}", 3 * i + 5, str(i % 2)])
    d = open_table(write_rows(tmp_path / "ids.csv", rows))
    cols = d.schema["columns"]
    assert cols["row_id"]["type"] == "id" and "integer" in cols["row_id"]["reason"]
    assert cols["code"]["type"] == "id"
    assert cols["comment"]["type"] == "text" and "free text" in cols["comment"]["reason"]
    assert cols["ref"]["type"] == "text" and "high-cardinality" in cols["ref"]["reason"]
    assert d.schema["feature_names"] == ["value", "visits"] and d.input_shape == (2,)
    assert any(n.startswith("dropped columns:") and "row_id" in n and "comment" in n for n in d.notes)
    assert dict(d.report)["dropped"].count(";") == 3


def test_titanic_like_file(tmp_path):
    d = open_table(write_rows(tmp_path / "titanic.csv", titanic_rows()), target="Survived")
    cols = d.schema["columns"]
    assert d.task == "binary" and d.classes == ("0", "1")
    for dropped in ("PassengerId", "Name", "Ticket"):
        assert "reason" in cols[dropped], dropped
        assert not any(n.startswith(dropped) for n in d.schema["feature_names"])
    assert cols["Sex"] == {"type": "categorical", "levels": 2}
    assert {"Age", "Age_missing", "Sex=female", "Sex=male", "Pclass", "Fare"} <= set(d.schema["feature_names"])
    report = dict(d.report)
    assert report["target"].startswith("Survived: binary")
    assert "Age" in report["missing"] and report["rows"] == "200"
    assert report["split"] == "80/20 by --seed 0: 160 train / 40 test"
    assert d.x_train.isfinite().all() and d.x_test.isfinite().all()
    json.dumps(d.schema)


def test_names_layout_as_character_sequences(tmp_path):
    path = write_rows(tmp_path / "names_train.csv", names_rows())
    d = open_table(path, text="0")
    assert d.schema["format"]["header"] is False
    assert (d.task, d.kind) == ("sequence", "sequence")
    assert d.classes == tuple(sorted(COUNTRIES))
    assert d.x_train.dtype == torch.int64 and d.y_train.dtype == torch.int64
    longest = max(len(n) for names in NAMES.values() for n in names)
    assert d.input_shape == (longest,) and d.x_train.shape[1] == longest
    chars = sorted(set("".join(n for names in NAMES.values() for n in names)))
    assert d.vocab == "".join(chars) + "\ufffd" and d.vocab_size == len(chars) + 2
    assert d.x_train.max() < d.vocab_size
    # ids decode back to the names, left-aligned and 0-padded
    decoded = {"".join(d.vocab[i - 1] for i in row if i) for row in d.x_train.tolist()}
    assert decoded <= {n for names in NAMES.values() for n in names}
    first = d.x_train[0]
    k = int((first != 0).sum())
    assert (first[:k] != 0).all() and (first[k:] == 0).all()
    # by name too, and the same tensors again from the schema
    assert same(open_table(path, text="col0"), d)
    assert same(open_table(path, schema=json_round(d.schema)), d)


def test_sequence_test_file_maps_unseen_characters_to_unknown(tmp_path):
    train = write_rows(tmp_path / "names_train.csv", names_rows())
    test = write_rows(tmp_path / "names_test.csv", [["Zoë", "German"], ["Rossi", "Italian"]])
    d = open_table(train, text="0", test=test)
    assert d.split == "--test names_test.csv" and len(d.y_test) == 2
    unknown = d.vocab_size - 1
    zoe = d.x_test[0].tolist()
    assert zoe[0] == unknown and zoe[1] == d.vocab.index("o") + 1 and zoe[2] == unknown
    assert d.y_test.tolist() == [d.classes.index("German"), d.classes.index("Italian")]


def test_regression_target_keeps_its_units(tmp_path):
    r = np.random.default_rng(5)
    x = r.normal(size=(100, 3))
    price = 1000 + 250 * x[:, 0] + r.normal(size=100)
    rows = [["a", "b", "c", "price"]] + [
        [*map("{:.4f}".format, row), f"{p:.2f}"] for row, p in zip(x, price, strict=True)
    ]
    d = open_table(write_rows(tmp_path / "houses.csv", rows))
    assert d.task == "regression" and d.classes == () and d.y_train.dtype == torch.float32
    tr, te = split_indices(100, 0)
    expected = torch.tensor([float(rows[1 + i][3]) for i in tr.tolist()])
    assert torch.allclose(d.y_train, expected)
    assert "own units" in dict(d.report)["target"]


def test_task_override(tmp_path):
    r = np.random.default_rng(6)
    rows = [["x", "grade", "yes_no"]] + [
        [f"{v:.3f}", str(int(r.integers(1, 4))), str(r.choice(["no", "yes"]))] for v in r.normal(size=90)
    ]
    path = write_rows(tmp_path / "grades.csv", rows)
    assert open_table(path, target="grade").task == "classification"
    d = open_table(path, target="grade", task="regression")
    assert d.task == "regression" and d.y_train.dtype == torch.float32 and set(d.y_train.tolist()) <= {1.0, 2.0, 3.0}
    assert open_table(path, target="yes_no").task == "binary"
    two = open_table(path, target="yes_no", task="classification")
    assert two.task == "classification" and two.y_train.dtype == torch.int64 and two.classes == ("no", "yes")
    with pytest.raises(DataError) as e:
        open_table(path, target="grade", task="binary")
    assert "exactly 2" in one_line_error(e, "grades.csv")
    with pytest.raises(DataError) as e:
        open_table(path, target="yes_no", task="regression")
    one_line_error(e, "grades.csv")
    with pytest.raises(ConfigError):
        open_table(path, task="clasification")


def test_target_by_index_and_numeric_class_order(tmp_path):
    rows = [["v", "level"]] + [[str(i % 4), str([10, 2, -1][i % 3])] for i in range(30)]
    path = write_rows(tmp_path / "levels.csv", rows)
    d = open_table(path, target="1")
    assert d.classes == ("-1", "2", "10")  # numbers sorted as numbers
    assert same(d, open_table(path, target="-1"))


# --- schema and split ----------------------------------------------------------------------


def test_schema_round_trip_gives_identical_tensors(tmp_path):
    path, _ = mixed_table(tmp_path)
    d = open_table(path, seed=7)
    again = open_table(path, schema=json_round(d.schema), seed=123)  # the schema's seed rules
    assert same(d, again) and again.split == "80/20 by --seed 7"
    assert again.classes == d.classes and again.input_shape == d.input_shape
    assert not same(d, open_table(path, seed=8))
    # the file lost a column the schema uses
    rows = list(csv.reader(path.open()))
    write_rows(path, [r[:1] + r[2:] for r in rows])
    with pytest.raises(DataError) as e:
        open_table(path, schema=json_round(d.schema))
    assert "'colour'" in one_line_error(e, "mixed.csv")


def test_test_file_split_fits_on_train_only(tmp_path):
    train = [["size", "colour", "y"]] + [[str(i % 10), ["red", "blue"][i % 2], str(i % 2)] for i in range(50)]
    test = [["size", "colour", "y"], ["1000", "red", "1"], ["", "purple", "0"]]
    d = open_table(write_rows(tmp_path / "train.csv", train), test=write_rows(tmp_path / "test.csv", test))
    assert d.split == "--test test.csv" and (len(d.y_train), len(d.y_test)) == (50, 2)
    size = d.schema["features"][0]
    assert size["mean"] == pytest.approx(4.5) and size["indicator"] is False  # train had no missing size
    names = d.schema["feature_names"]
    assert names == ["size", "colour=blue", "colour=red"]
    assert d.x_test[0, 0] == pytest.approx((1000 - 4.5) / size["std"])
    assert d.x_test[1].tolist()[1:] == [0.0, 0.0]  # an unseen level: no level column set
    assert d.x_test[1, 0] == pytest.approx((size["fill"] - 4.5) / size["std"])
    assert same(d, open_table(tmp_path / "train.csv", schema=json_round(d.schema)))
    write_rows(tmp_path / "bad_test.csv", [["size", "colour", "y"], ["1", "red", "7"]])
    with pytest.raises(DataError) as e:
        open_table(tmp_path / "train.csv", test=tmp_path / "bad_test.csv")
    assert "'7'" in one_line_error(e, "bad_test.csv")
    # a numeric column holding text: a few cells are missing values, most of them an error
    write_rows(tmp_path / "t2.csv", [["size", "colour", "y"], ["n/a?", "red", "1"], *[["3", "red", "0"]] * 3])
    d2 = open_table(tmp_path / "train.csv", test=tmp_path / "t2.csv")
    assert any("t2.csv: size has 1 non-numeric cell (e.g. 'n/a?')" in n for n in d2.notes)
    write_rows(tmp_path / "t3.csv", [["size", "colour", "y"], ["big", "red", "1"], ["small", "red", "0"]])
    with pytest.raises(DataError) as e:
        open_table(tmp_path / "train.csv", test=tmp_path / "t3.csv")
    assert "holds text" in one_line_error(e, "t3.csv")


def test_rows_without_a_target_are_left_out(tmp_path):
    rows = [["a", "y"]] + [[str(i % 7), "" if i % 10 == 0 else str(i % 2)] for i in range(50)]
    d = open_table(write_rows(tmp_path / "gaps.csv", rows))
    assert len(d.y_train) + len(d.y_test) == 45
    assert any("5 rows without a target" in n for n in d.notes)


def test_cp1252_file_is_read_with_a_note(tmp_path):
    text = "name,città,y\n" + "".join(f"n{i},{['Zürich', 'Genève', 'Köln'][i % 3]},{i % 2}\n" for i in range(30))
    (tmp_path / "latin.csv").write_bytes(text.encode("cp1252"))
    d = open_table(tmp_path / "latin.csv")
    assert d.schema["format"]["encoding"] == "cp1252" and "città" in d.schema["columns"]
    assert "città=Genève" in d.schema["feature_names"]
    assert any("cp1252" in n for n in d.notes)


def test_short_row_is_found_whatever_the_chunk_size(tmp_path, monkeypatch):
    """The vectorised ragged check finds a short row whatever the chunk size."""
    body = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(200))
    (tmp_path / "short.csv").write_text("a,b,y\n" + body + "7,1\n" + body)
    for chunk in (3, 64, 1 << 22):
        monkeypatch.setattr(tablefile, "CHUNK", chunk)
        with pytest.raises(DataError) as e:
            open_table(tmp_path / "short.csv")
        assert "line 202 has 2 fields" in one_line_error(e, "short.csv")


# --- bad input: one line naming the file ---------------------------------------------------


def _bad_files(tmp_path):
    good_rows = "".join(f"{i % 5},{i % 2}\n" for i in range(20))
    cases = {
        "missing.csv": (None, "no such file"),
        "folder.csv": ("dir", "directory"),
        "empty.csv": (b"", "empty"),
        "blank.csv": (b"\n\n\r\n", "empty"),
        "header_only.csv": (b"a,b,y\n", "no data rows"),
        "ragged.csv": (("a,b,y\n1,2,3\n4,5,6\n7,8,9,10\n" + "1,2,3\n" * 5).encode(), "line 4 has 4 fields"),
        "binary.csv": (bytes(range(256)) * 4, "NUL byte"),
        "sheet.csv": (b"PK\x03\x04" + b"x" * 100, "zip archive"),
        "notgzip.csv.gz": (b"\x1f\x8b\x08\x00garbage" * 10, "gzip"),
        "bad_bytes.csv": (b"a,y\n" + b"caf\x81,1\n" * 5, "offset 7"),
        "one_class.csv": (b"a,y\n" + b"".join(f"{i},1\n".encode() for i in range(20)), "one value"),
        "all_dropped.csv": (b"id,y\n" + b"".join(f"{i},{i % 2}\n".encode() for i in range(20)), "every feature"),
        "no_target.csv": (b"a,y\n" + b"".join(f"{i},\n".encode() for i in range(20)), "no values"),
        "one_column.csv": (b"y\n" + b"".join(f"{i % 2}\n".encode() for i in range(20)), "one column"),
        "too_few.csv": (b"a,y\n1,0\n2,1\n", "too few"),
        "utf16.csv": ("a,y\n1,0\n".encode("utf-16"), "UTF-16"),
        "mac.csv": (b"a,y\r" + b"1,0\r2,1\r" * 5, "CR alone"),
        "open_quote.csv": (b'a,b,y\n1,2,0\n3,"4,1\n' + b"5,6,1\n" * 10, "lines 3-13 (a quote left open?)"),
        "row_names.csv": (b"a,y\n" + b"".join(f"r{i},{i % 3},{i % 2}\n".encode() for i in range(9)), "row names"),
        "good.csv": (good_rows.encode(), None),
    }
    for name, (content, _) in cases.items():
        if content == "dir":
            (tmp_path / name).mkdir()
        elif content is not None:
            (tmp_path / name).write_bytes(content)
    return {name: why for name, (_, why) in cases.items()}


def test_bad_inputs_fail_in_one_line_naming_the_file(tmp_path):
    for name, why in _bad_files(tmp_path).items():
        if why is None:
            open_table(tmp_path / name)
            continue
        with pytest.raises(DataError) as e:
            open_table(tmp_path / name)
        assert why in one_line_error(e, name), name


def test_unknown_target_column_suggests_a_close_name(tmp_path):
    path = write_rows(tmp_path / "titanic.csv", titanic_rows(40))
    with pytest.raises(DataError) as e:
        open_table(path, target="survived")
    assert "did you mean 'Survived'" in one_line_error(e, "titanic.csv")
    with pytest.raises(DataError) as e:
        open_table(path, target="12")
    assert "0..11" in one_line_error(e, "titanic.csv")
    with pytest.raises(DataError) as e:
        open_table(path, target="Name", text="Name")
    one_line_error(e, "titanic.csv")


def test_text_column_of_numbers_or_regression_target_is_refused(tmp_path):
    rows = [["n", "w", "y"]] + [[str(i), f"w{i % 5}", f"{i * 0.37:.2f}"] for i in range(40)]
    path = write_rows(tmp_path / "mixed_text.csv", rows)
    with pytest.raises(DataError) as e:
        open_table(path, text="n")
    assert "holds numbers" in one_line_error(e, "mixed_text.csv")
    with pytest.raises(DataError) as e:
        open_table(path, text="w")
    assert "sequence" in one_line_error(e, "mixed_text.csv")


def test_schema_is_json_and_finite(tmp_path):
    d = open_table(write_rows(tmp_path / "titanic.csv", titanic_rows(60)), target="Survived")
    text = json.dumps(d.schema, allow_nan=False)
    for f in json.loads(text)["features"]:
        if f["type"] == "numeric":
            assert all(math.isfinite(f[k]) for k in ("fill", "mean", "std"))


def test_bool_target_and_foreign_schema(tmp_path):
    rows = [["a", "flag"]] + [[str(i % 6), ["True", "False"][i % 3 == 0]] for i in range(40)]
    path = write_rows(tmp_path / "flags.csv", rows)
    d = open_table(path)
    assert d.task == "binary" and d.classes == ("False", "True")
    assert d.y_train.sum() > 0 and (d.y_train == 0).sum() > 0
    for schema in ({"reader": "imagefolder", "version": 1}, {**d.schema, "version": 99}):
        with pytest.raises(DataError) as e:
            open_table(path, schema=schema)
        one_line_error(e, "flags.csv")
    broken = {k: v for k, v in d.schema.items() if k != "target"}
    with pytest.raises(DataError) as e:
        open_table(path, schema=broken)
    one_line_error(e, "flags.csv")
