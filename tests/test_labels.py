"""dstl.labels: grid_sizes.csv and WKT CSV reading/writing, geometry repair, WKT formatting."""

import re

import numpy as np
import pytest
import shapely
from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Point, Polygon, box

from dstl.errors import DataError
from dstl.labels import (
    format_wkt,
    iter_wkt_rows,
    parse_wkt,
    read_grid_sizes,
    read_wkt_csv,
    to_multipolygon,
    write_wkt_csv,
)

HEADER = "ImageId,ClassType,MultipolygonWKT\n"
BOWTIE = "POLYGON ((0 0, 0.002 -0.002, 0.002 0, 0 -0.002, 0 0))"  # self-intersecting


def _write(path, text, encoding="utf-8"):
    path.write_text(text, encoding=encoding)
    return path


# ----------------------------------------------------------------------------- grid_sizes.csv

def test_read_grid_sizes(tmp_path):
    path = _write(tmp_path / "grid_sizes.csv",
                  ",Xmax,Ymin\n6120_2_4,0.00917,-0.00904\n6120_2_2,0.009188,-0.00904\n\n")
    assert read_grid_sizes(path) == {"6120_2_4": (0.00917, -0.00904), "6120_2_2": (0.009188, -0.00904)}


def test_read_grid_sizes_tolerates_a_byte_order_mark(tmp_path):
    path = _write(tmp_path / "g.csv", ",Xmax,Ymin\n9001_0_0,0.0091,-0.009\n", encoding="utf-8-sig")
    assert read_grid_sizes(path) == {"9001_0_0": (0.0091, -0.009)}


@pytest.mark.parametrize("text, message", [
    ("ImageId,Xmax,Ymin\na,0.009,-0.009\n", "line 1: header must be ',Xmax,Ymin'"),
    ("Xmax,Ymin\na,0.009,-0.009\n", "line 1: header"),
    ("", "empty"),
    (",Xmax,Ymin\na,0.009,-0.009\nb,abc,-0.009\n", "line 3: Xmax/Ymin must be numbers"),
    (",Xmax,Ymin\na,0.009\n", "line 2: expected 3 cells"),
    (",Xmax,Ymin\na,0,-0.009\n", "line 2: Xmax must be > 0"),
    (",Xmax,Ymin\na,-0.009,-0.009\n", "line 2: Xmax must be > 0"),
    (",Xmax,Ymin\na,nan,-0.009\n", "line 2: Xmax must be > 0"),
    (",Xmax,Ymin\na,0.009,0.009\n", "line 2: Ymin must be < 0"),
    (",Xmax,Ymin\na,0.009,0\n", "line 2: Ymin must be < 0"),
    (",Xmax,Ymin\na,0.009,-0.009\na,0.008,-0.008\n", "line 3: duplicate ImageId 'a'"),
    (",Xmax,Ymin\n,0.009,-0.009\n", "line 2: empty ImageId"),
])
def test_read_grid_sizes_rejects_bad_files(tmp_path, text, message):
    path = _write(tmp_path / "grid_sizes.csv", text)
    with pytest.raises(DataError) as e:
        read_grid_sizes(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_read_grid_sizes_missing_or_binary_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_grid_sizes(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_grid_sizes(tmp_path / "bin.csv")
    with pytest.raises(DataError, match="not a file"):
        read_grid_sizes(tmp_path)


# ----------------------------------------------------------------------------- WKT CSV reading

def test_read_wkt_csv_polygons_holes_empty_and_missing_classes(tmp_path):
    path = _write(tmp_path / "train.csv", HEADER
                  + '9001_0_0,1,"MULTIPOLYGON (((0 0,0.004 0,0.004 -0.004,0 -0.004,0 0),'
                    '(0.001 -0.001,0.002 -0.001,0.002 -0.002,0.001 -0.002,0.001 -0.001)))"\n'
                  + "9001_0_0,2,MULTIPOLYGON EMPTY\n"
                  + '9001_0_0,3,"POLYGON ((0 0,0.001 0,0.001 -0.001,0 0))"\n'
                  + "9002_0_0,10,MULTIPOLYGON EMPTY\n")
    labels = read_wkt_csv(path)
    assert list(labels) == ["9001_0_0", "9002_0_0"]
    for classes in labels.values():
        assert sorted(classes) == list(range(1, 11))  # absent classes are empty, not missing
        assert all(isinstance(g, MultiPolygon) and g.is_valid for g in classes.values())
    b = labels["9001_0_0"][1]
    assert len(b.geoms) == 1 and len(b.geoms[0].interiors) == 1
    assert b.area == pytest.approx(0.004**2 - 0.001**2)
    assert labels["9001_0_0"][2].is_empty and labels["9001_0_0"][4].is_empty
    assert labels["9001_0_0"][3].area == pytest.approx(0.0005 * 0.001)  # POLYGON -> MultiPolygon
    assert all(g.is_empty for g in labels["9002_0_0"].values())


def test_invalid_polygons_are_repaired_not_fatal(tmp_path):
    overlapping = "MULTIPOLYGON (((0 0,2 0,2 -2,0 -2,0 0)),((1 -1,3 -1,3 -3,1 -3,1 -1)))"
    path = _write(tmp_path / "train.csv", HEADER + f'a,1,"{BOWTIE}"\na,2,"{overlapping}"\n'
                                                   'a,3,"POLYGON ((0 0,1 0,0 0))"\n')
    rows = list(iter_wkt_rows(path))
    assert [r.repaired for r in rows] == [True, True, True]
    bowtie, union, collapsed = (r.geometry for r in rows)
    assert bowtie.is_valid and len(bowtie.geoms) == 2  # both lobes kept, not one dropped
    assert bowtie.area == pytest.approx(2 * 0.001 * 0.002 / 2)
    assert union.is_valid and union.area == pytest.approx(7.0)  # the union, overlap counted once
    assert collapsed.is_empty
    assert read_wkt_csv(path)["a"][1].equals(bowtie)


def test_huge_wkt_field_is_read(tmp_path):
    # The real train_wkt_v4.csv has multi-MB fields; csv's default limit is 128 kB.
    angles = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
    circle = Polygon(np.c_[0.004 + 0.003 * np.cos(angles), -0.004 + 0.003 * np.sin(angles)])
    text = shapely.to_wkt(MultiPolygon([circle]), rounding_precision=15)
    assert len(text) > 200_000
    path = _write(tmp_path / "big.csv", HEADER + f'a,5,"{text}"\n')
    assert read_wkt_csv(path)["a"][5].area == pytest.approx(circle.area)


@pytest.mark.parametrize("body, message", [
    ("a,1,MULTIPOLYGON EMPTY\n", None),  # control: fine
    ("a,0,MULTIPOLYGON EMPTY\n", "line 2: ClassType must be an integer 1..10, got '0'"),
    ("a,1,MULTIPOLYGON EMPTY\na,11,MULTIPOLYGON EMPTY\n", "line 3: ClassType must be"),
    ("a,x,MULTIPOLYGON EMPTY\n", "line 2: ClassType must be"),
    ("a,1.5,MULTIPOLYGON EMPTY\n", "line 2: ClassType must be"),
    ('a,1,"MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)"\n', "line 2: image a class 1: malformed WKT"),
    ("a,1,hello\n", "line 2: image a class 1: malformed WKT"),
    ("a,1,\n", "line 2: image a class 1: empty WKT field"),
    ("a,1,POINT (1 1)\n", "line 2: image a class 1: expected MULTIPOLYGON or POLYGON, got Point"),
    ('a,1,"LINESTRING (0 0, 1 1)"\n', "expected MULTIPOLYGON or POLYGON, got LineString"),
    ('a,1,"POLYGON ((0 0, nan 1, 1 1, 0 0))"\n', "line 2: image a class 1: WKT has non-finite"),
    ("a,1\n", "line 2: expected 3 cells"),
    ("a,1,MULTIPOLYGON EMPTY,extra\n", "line 2: expected 3 cells"),
    (",1,MULTIPOLYGON EMPTY\n", "line 2: empty ImageId"),
    ("a,1,MULTIPOLYGON EMPTY\n\na,1,MULTIPOLYGON EMPTY\n", "line 4: duplicate row for image a class 1 "
                                                           "(first on line 2)"),
])
def test_read_wkt_csv_rejects_bad_rows_naming_file_and_line(tmp_path, body, message):
    path = _write(tmp_path / "sub.csv", HEADER + body)
    if message is None:
        assert read_wkt_csv(path)["a"][1].is_empty
        return
    with pytest.raises(DataError) as e:
        read_wkt_csv(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("header", ["ImageId,ClassType,WKT", "ImageId,ClassType", "a,1,MULTIPOLYGON EMPTY",
                                    ",Xmax,Ymin"])
def test_read_wkt_csv_wrong_header(tmp_path, header):
    path = _write(tmp_path / "sub.csv", header + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}: line 1: header must be "
                                                  "ImageId,ClassType,MultipolygonWKT")):
        read_wkt_csv(path)


def test_read_wkt_csv_empty_and_missing(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_wkt_csv(_write(tmp_path / "e.csv", ""))
    with pytest.raises(DataError, match="not found"):
        read_wkt_csv(tmp_path / "missing.csv")


def test_parse_wkt():
    geom, repaired = parse_wkt("MULTIPOLYGON EMPTY")
    assert geom.is_empty and not repaired and isinstance(geom, MultiPolygon)
    geom, repaired = parse_wkt(BOWTIE)
    assert repaired and geom.is_valid
    with pytest.raises(ValueError, match="non-finite"):
        parse_wkt("POLYGON ((0 0, 1e400 0, 1 1, 0 0))")


# ----------------------------------------------------------------------------- geometry helpers

def test_to_multipolygon_keeps_only_polygonal_parts():
    assert to_multipolygon(None).is_empty
    assert isinstance(to_multipolygon(Polygon()), MultiPolygon)
    gc = GeometryCollection([box(0, 0, 1, 1), LineString([(2, 2), (3, 3)]), Point(5, 5),
                             MultiPolygon([box(10, 10, 12, 12)])])
    mp = to_multipolygon(gc)
    assert mp.is_valid and len(mp.geoms) == 2 and mp.area == pytest.approx(5.0)
    touching = GeometryCollection([box(0, 0, 1, 1), box(1, 0, 2, 1)])  # shared edge: invalid as multi
    mp = to_multipolygon(touching)
    assert mp.is_valid and mp.area == pytest.approx(2.0)
    valid = MultiPolygon([box(0, 0, 1, 1)])
    assert to_multipolygon(valid) is valid


# ----------------------------------------------------------------------------- writing

def test_format_wkt_fixed_notation_and_decimals():
    assert format_wkt(None) == "MULTIPOLYGON EMPTY"
    assert format_wkt(MultiPolygon()) == "MULTIPOLYGON EMPTY"
    assert format_wkt(LineString([(0, 0), (1, 1)])) == "MULTIPOLYGON EMPTY"
    x1 = 0.0091234567891
    poly = Polygon([(1.2e-9, -3e-9), (x1, -2e-9), (x1, -0.00904), (1.2e-9, -0.00904)])
    text = format_wkt(poly)
    assert text.startswith("MULTIPOLYGON (((") and text.endswith(")))")
    assert "e-" not in text.lower() and "-0 " not in text and "-0," not in text
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
    assert all(len(n.split(".")[1]) <= 8 for n in numbers if "." in n)
    assert "0.00912346" in text and "-0.00904" in text
    back = shapely.from_wkt(text)
    assert back.is_valid and back.area == pytest.approx(poly.area, rel=1e-5)


def test_format_wkt_output_is_valid_even_where_rounding_would_break_it():
    # Two lobes 3e-9 apart: plain rounding to 8 decimals makes them overlap (invalid multipolygon).
    a = box(0, 0, 0.001, 0.001)
    b = box(0.001 + 3e-9, 0, 0.002, 0.001)
    naive = shapely.from_wkt(shapely.to_wkt(MultiPolygon([a, b]), rounding_precision=8))
    assert not naive.is_valid
    back = shapely.from_wkt(format_wkt(MultiPolygon([a, b])))
    assert back.is_valid and back.area == pytest.approx(0.002 * 0.001, rel=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(50):  # jagged random polygons at the grid's scale
        pts = rng.uniform(0, 2e-6, (12, 2)) * [1, -1]
        g = to_multipolygon(Polygon(pts))
        back, repaired = parse_wkt(format_wkt(g))
        assert back.is_valid and not repaired


def test_write_wkt_csv_round_trip(tmp_path):
    hole = Polygon(box(0, -0.004, 0.004, 0).exterior.coords,
                   [box(0.001, -0.002, 0.002, -0.001).exterior.coords])
    rows = [("9001_0_0", k, hole if k == 1 else None) for k in range(1, 11)]
    rows.append(("9001_0_1", 4, Polygon([(0, 0), (0.001, 0), (0.001, -0.001)])))
    out = tmp_path / "sub" / "rows.csv"
    write_wkt_csv(out, rows)
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,ClassType,MultipolygonWKT" and len(lines) == 12
    assert lines[2] == "9001_0_0,2,MULTIPOLYGON EMPTY"
    back = read_wkt_csv(out)
    assert back["9001_0_0"][1].equals(to_multipolygon(hole))  # same shape (vertex order may differ)
    assert back["9001_0_1"][4].area == pytest.approx(0.0005 * 0.001)
    assert [p.name for p in out.parent.iterdir()] == ["rows.csv"]


def test_write_wkt_csv_is_atomic(tmp_path):
    out = tmp_path / "rows.csv"

    def rows():
        yield ("a", 1, box(0, -1e-3, 1e-3, 0))
        raise RuntimeError("model crashed half-way")

    with pytest.raises(RuntimeError):
        write_wkt_csv(out, rows())
    with pytest.raises(ValueError, match="class id"):
        write_wkt_csv(out, [("a", 11, None)])
    with pytest.raises(ValueError, match="empty image id"):
        write_wkt_csv(out, [("", 1, None)])
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- union_polygons


def test_union_polygons_equals_union_all():
    import numpy as np
    import shapely
    from shapely.geometry import Point, box

    from dstl.labels import union_polygons

    rng = np.random.default_rng(0)
    parts = [Point(x, y).buffer(r, 8) for x, y, r in rng.uniform((0, 0, 0.5), (100, 100, 3), (300, 3))]
    parts += [box(200, 0, 201, 1), box(201, 0, 202, 1), box(202, 1, 203, 2)]  # edge and corner touches
    got = union_polygons(parts)
    want = shapely.union_all(parts)
    assert got.is_valid and got.geom_type == "MultiPolygon"
    assert len(got.geoms) == len(shapely.get_parts(want))
    assert got.symmetric_difference(want).area < 1e-9
    assert union_polygons([]).is_empty and len(union_polygons([box(0, 0, 1, 1)]).geoms) == 1
