"""The one CSV reader and writer of vaekit.data (used by the datasets and the command line)."""

import csv

import numpy as np
import pytest

from vaekit.data import datasets, iter_numeric, read_csv, read_numeric, read_table, write_csv, write_csv_chunks


def test_quoted_fields_and_blank_lines(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('name,"a, b",c\n"x, y", 1 ,"2"\n\n"z ""q""","3.5",4\n')
    names, rows = read_csv(p)
    assert names == ["name", "a, b", "c"]
    assert rows == [["x, y", "1", "2"], ['z "q"', "3.5", "4"]]
    x, y, features = read_table(p, label_column="name")
    np.testing.assert_array_equal(x, np.array([[1, 2], [3.5, 4]], np.float32))
    assert y.tolist() == ["x, y", 'z "q"'] and features == ["a, b", "c"]


def test_header_or_no_header(tmp_path):
    (tmp_path / "h.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "n.csv").write_text("1,2\n3,4\n")
    assert read_numeric(tmp_path / "h.csv")[0] == ["a", "b"]
    names, x = read_numeric(tmp_path / "n.csv")
    assert names is None
    np.testing.assert_array_equal(x, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(read_numeric(tmp_path / "h.csv")[1], x)
    # header=True always takes the first line as names, even an all-number one
    assert read_csv(tmp_path / "n.csv", header=True) == (["1", "2"], [["3", "4"]])
    assert read_csv(tmp_path / "n.csv", header="auto") == (None, [["1", "2"], ["3", "4"]])
    (tmp_path / "only.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="only.csv has no data rows"):
        read_csv(tmp_path / "only.csv")
    (tmp_path / "empty.csv").write_text("\n \n")
    with pytest.raises(ValueError, match="empty.csv has no rows"):
        read_numeric(tmp_path / "empty.csv")


def test_label_column_through_datasets(tmp_path):
    (tmp_path / "d.csv").write_text("f1,label,f2\n0.5,cat,1\n1.5,dog,2\n2.5,cat,3\n")
    ds = datasets.load(tmp_path / "d.csv", split="all", label_column="label")
    np.testing.assert_array_equal(ds.x, np.array([[0.5, 1], [1.5, 2], [2.5, 3]], np.float32))
    assert ds.y.tolist() == ["cat", "dog", "cat"] and ds.meta["features"] == ["f1", "f2"]
    (tmp_path / "n.csv").write_text("f1,y\n0.5,0\n1.5,1\n")
    _, y, _ = read_table(tmp_path / "n.csv", label_column="y")
    assert y.dtype == np.float64 and y.tolist() == [0.0, 1.0]  # numeric labels stay numbers


@pytest.mark.parametrize("chunk_rows", [None, 1, 3, 100])
def test_non_numeric_cell_names_line_and_column(tmp_path, chunk_rows):
    # line 6 (after a blank line and a quoted two-line cell) holds the bad cell in column 'b'
    (tmp_path / "bad.csv").write_text('a,b\n1,2\n\n"3\n",4\n5,oops\n')
    with pytest.raises(ValueError, match=r"bad.csv: column 'b' is not numeric: line 6 holds 'oops'"):
        _, _, chunks = iter_numeric(tmp_path / "bad.csv", chunk_rows=chunk_rows)
        list(chunks)
    (tmp_path / "nh.csv").write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match=r"column 2 is not numeric: line 2 holds 'x'"):
        read_numeric(tmp_path / "nh.csv")


def test_ragged_and_binary_files(tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(ValueError, match="line 3 has 3 fields but the first line has 2"):
        read_numeric(tmp_path / "r.csv")
    (tmp_path / "bin.csv").write_bytes(b"a,b\n1,2\n\xff\xfe\x00\x01")
    with pytest.raises(
        ValueError, match=r"bin.csv is not a text CSV file: byte 0xff at position 8 \(line 3\) is not a UTF-8"
    ):
        read_numeric(tmp_path / "bin.csv")
    with pytest.raises(FileNotFoundError, match="missing.csv does not exist"):
        iter_numeric(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="chunk_rows must be a positive int"):
        iter_numeric(tmp_path / "r.csv", chunk_rows=0)


@pytest.mark.parametrize("header", [True, False])
def test_chunked_equals_whole(tmp_path, header):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(23, 3)) * 10.0 ** rng.integers(-5, 5, size=(23, 3))
    with open(tmp_path / "x.csv", "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(["a", "b", "c"])
        w.writerows([[repr(float(v)) for v in row] for row in x])
    names, whole = read_numeric(tmp_path / "x.csv")
    assert names == (["a", "b", "c"] if header else None)
    np.testing.assert_array_equal(whole, x)  # repr round-trips float64 exactly
    for k in (1, 5, 23, 50):
        n2, width, chunks = iter_numeric(tmp_path / "x.csv", chunk_rows=k)
        parts = list(chunks)
        assert n2 == names and width == 3
        assert [len(p) for p in parts] == [min(k, 23 - i) for i in range(0, 23, k)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.save(tmp_path / "x.npy", x)
    _, _, chunks = iter_numeric(tmp_path / "x.npy", chunk_rows=4)
    np.testing.assert_array_equal(np.concatenate(list(chunks)), whole)
    np.testing.assert_array_equal(read_numeric(tmp_path / "x.npy")[1], whole)


def test_writer_round_trips_through_the_reader(tmp_path):
    x = np.array([0.1, 1 / 3, -2.5e-300, 7.0])
    names = np.array(["a", "b,c", 'say "hi"', ""], dtype=object)
    flags = np.array([0, 1, 0, 1])
    write_csv(tmp_path / "o.csv", ["score", "name", "flag"], [x, names, flags])
    header, rows = read_csv(tmp_path / "o.csv")
    assert header == ["score", "name", "flag"]
    np.testing.assert_array_equal([float(r[0]) for r in rows], x)  # full precision
    assert [r[1] for r in rows] == names.tolist() and [r[2] for r in rows] == ["0", "1", "0", "1"]
    with pytest.raises(FileExistsError, match="o.csv already exists"):
        write_csv(tmp_path / "o.csv", ["score"], [x])
    write_csv(tmp_path / "o.csv", ["score"], [x[:2]], force=True)
    np.testing.assert_array_equal(read_numeric(tmp_path / "o.csv")[1][:, 0], x[:2])


def test_chunked_writer_is_atomic(tmp_path):
    def chunks():
        yield [np.arange(3.0)]
        yield [np.arange(3.0, 5.0)]

    assert write_csv_chunks(tmp_path / "c.csv", ["v"], chunks()) == 5
    np.testing.assert_array_equal(read_numeric(tmp_path / "c.csv")[1][:, 0], np.arange(5.0))

    def failing():
        yield [np.arange(3.0)]
        raise ValueError("input line 9 is bad")

    with pytest.raises(ValueError, match="input line 9 is bad"):
        write_csv_chunks(tmp_path / "f.csv", ["v"], failing())
    assert list(tmp_path.iterdir()) == [tmp_path / "c.csv"]  # no half-written file, no temporary
    with pytest.raises(ValueError, match="2 columns for a header of 1 names"):
        write_csv_chunks(tmp_path / "g.csv", ["v"], [[np.arange(2.0), np.arange(2.0)]])
