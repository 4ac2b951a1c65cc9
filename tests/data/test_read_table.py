"""Files that cannot be read as a table: each ends in one DataError naming the file and the fix."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_core.data import DataError, read_table


def write(tmp_path, content: bytes, name: str = "rows.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty (0 bytes)"),
    (b"\n\n", "no columns to read (only blank lines?)"),
    (b"time,temp,y\n", "a header with 3 column(s) but no data rows"),
    (b"time;temp;y\n1;2,5;0\n2;3,1;1\n",
     "read as one column named 'time;temp;y'; it looks like ';'-separated: set data.sep: ';' in the config "
     "(or --sep ';')"),
    (b"time\ttemp\ty\n1\t2\t0\n", "it looks like tab-separated: set data.sep: '\\t'"),
    ("time,temp,y\n1,2,0\n2,caf\xe9,1\n".encode("latin-1"),
     "not UTF-8 text: byte 0xe9 at line 3 cannot be decoded (read as Windows-1252 the line is '2,café,1'); "
     "save the file as UTF-8"),
    ("time,temp\n1,2\n".encode("utf-16"), "the file is UTF-16 text; save it as UTF-8"),
])
def test_unreadable_files_name_the_file_and_the_fix(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(DataError) as caught:
        read_table(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert path.read_bytes() == content


def test_the_declared_delimiter_reads_the_file(tmp_path):
    path = write(tmp_path, b"time;temp;y\n1;2.5;0\n2;3.1;1\n")
    assert list(read_table(path, sep=";").columns) == ["time", "temp", "y"]


def test_bom_and_non_ascii_column_names_are_read(tmp_path):
    path = write(tmp_path, "\ufefftime,température,débit,y\n1,2.5,3,0\n".encode())
    assert list(read_table(path).columns) == ["time", "température", "débit", "y"]


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:  # sparse: 2 GB on paper, nothing written
        fh.truncate(2 * 1024**3)
    with pytest.raises(DataError) as caught:
        read_table(path, max_file_mb=1024)
    assert str(caught.value) == (
        f"{path}: the file is 2.0 GB, over the 1.0 GB limit (data.max_file_mb = 1024); pandas needs several times "
        "a file's size in memory. Raise data.max_file_mb (--max-file-mb) if this machine has that memory, or pass "
        "a slice of the rows"
    )


def test_parquet_is_read(tmp_path):
    path = tmp_path / "rows.parquet"
    pd.DataFrame({"time": [1, 2], "y": [0, 1]}).to_parquet(path)
    assert read_table(path)["y"].tolist() == [0, 1]


def test_a_broken_parquet_file_is_named(tmp_path):
    path = write(tmp_path, b"not parquet at all", "rows.parquet")
    with pytest.raises(DataError, match="cannot be parsed as Parquet"):
        read_table(path)


@pytest.mark.parametrize("index", [None, False, True])
def test_parquet_read_a_group_of_columns_at_a_time_equals_pandas_reading_it_whole(tmp_path, monkeypatch, index):
    from lstm_core import data

    df = pd.DataFrame({"s": ["a", None, "c"], "ns": pd.array(["x", None, "z"], dtype="string"),
                       "cat": pd.Categorical(["u", "v", "u"]), "b": [True, False, True],
                       "tz": pd.date_range("2024-01-01", periods=3, freq="h", tz="Europe/Berlin"),
                       "i": pd.array([1, None, 3], dtype="Int64"), "f": [1.0, np.nan, 3.0],
                       "x": np.float32([0.5, 1.5, 2.5])}, index=pd.Index([5, 6, 7]))
    path = tmp_path / "t.parquet"
    df.to_parquet(path, index=index)
    monkeypatch.setattr(data, "PARQUET_READ_GROUPS", 3)  # 3 groups of 3, 3 and 2 columns
    got = data.read_table(path)
    pd.testing.assert_frame_equal(got, pd.read_parquet(path))
    assert got._mgr.nblocks == got.shape[1]  # one block per column: no consolidated copy beside the Arrow columns
