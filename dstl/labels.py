"""Label files of the DSTL layout: grid_sizes.csv and WKT polygon CSVs, plus geometry repair.

Files (DESIGN.md §2):

- ``grid_sizes.csv``: header ``,Xmax,Ymin`` (the first header cell is EMPTY), then one row
  ``ImageId,Xmax,Ymin`` per image, with Xmax > 0 and Ymin < 0.
- ``train_wkt_v4.csv``, ``sample_submission.csv`` and submissions: header
  ``ImageId,ClassType,MultipolygonWKT``, one row per (image, class 1..10), geometry in GRID
  coordinates, ``MULTIPOLYGON EMPTY`` where a class has no objects.

Some polygons in the real training file are invalid (self-intersections); readers repair them
(`to_multipolygon`) instead of failing. Every geometry handed out by this module is a valid
`MultiPolygon` (possibly empty) holding polygonal parts only.
"""

import csv
import io
import math
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from dstl.atomic import atomic_path
from dstl.classes import CLASS_IDS, NUM_CLASSES
from dstl.errors import DataError

GRID_SIZES_HEADER = ("", "Xmax", "Ymin")
WKT_HEADER = ("ImageId", "ClassType", "MultipolygonWKT")

# A single WKT field of the real train_wkt_v4.csv is several MB (crop fields with tens of
# thousands of vertices); the csv module's default limit is 128 kB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


# ----------------------------------------------------------------------------- geometry helpers

def _polygons_in(geom: BaseGeometry) -> list[Polygon]:
    """Non-empty Polygon parts of any geometry, collections flattened; other types dropped."""
    out: list[Polygon] = []
    stack = [geom]
    while stack:
        g = stack.pop()
        if g is None or g.is_empty:
            continue
        if isinstance(g, Polygon):
            out.append(g)
        elif hasattr(g, "geoms"):  # Multi* and GeometryCollection
            stack.extend(shapely.get_parts(g))
    out.reverse()
    return out


def to_multipolygon(geom: BaseGeometry | None) -> MultiPolygon:
    """Coerce any geometry to a valid MultiPolygon holding only its polygonal parts.

    Invalid input (self-intersections, overlapping parts, bow-ties) is repaired with
    ``shapely.make_valid(method="structure")``, which keeps every enclosed area (both lobes of
    a bow-tie, the union of overlapping parts); points and lines (collapsed rings) are dropped.
    None or an empty geometry gives ``MULTIPOLYGON EMPTY``.
    """
    if geom is None or geom.is_empty:
        return MultiPolygon()
    if geom.is_valid:  # the common case; validity checks cost O(n log n) on multi-MB fields
        if isinstance(geom, MultiPolygon):
            return geom
        if isinstance(geom, Polygon):
            return MultiPolygon([geom])
    else:
        geom = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    parts = _polygons_in(geom)
    if not parts:
        return MultiPolygon()
    mp = MultiPolygon(parts)
    if not mp.is_valid:
        # Parts of a repaired collection may overlap or share edges: merge them.
        mp = _union_groups(parts)
        if not mp.is_valid:  # last resort; buffer(0) always yields valid polygons
            mp = MultiPolygon(_polygons_in(mp.buffer(0)))
    return mp


def union_polygons(parts: Iterable[BaseGeometry]) -> MultiPolygon:
    """The union of polygonal geometries as one valid MultiPolygon, in time ~linear in their number.

    Same result as ``to_multipolygon(shapely.union_all(parts))``, but only parts that intersect
    (or touch) one another are unioned: an STRtree finds the intersecting pairs, and each
    connected group is unioned on its own, so 48,000 mostly disjoint tree crowns cost a tree
    query instead of one overlay of everything (which grows faster than linearly). Parts are
    repaired first (`to_multipolygon`); disjoint groups never share a point, so their
    concatenation is a valid MultiPolygon.
    """
    return _union_groups([p for g in parts for p in to_multipolygon(g).geoms])


def _union_groups(polys: list[Polygon]) -> MultiPolygon:
    """Union of valid polygons, group by group of intersecting ones (see `union_polygons`)."""
    if len(polys) <= 1:
        return MultiPolygon(polys)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    arr = np.asarray(polys, dtype=object)
    left, right = shapely.STRtree(arr).query(arr, predicate="intersects")
    n = len(arr)
    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    n_groups, group = connected_components(graph, directed=False)
    if n_groups == n:
        return MultiPolygon(polys)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    out: list[Polygon] = []
    for members in np.split(order, bounds):
        if len(members) == 1:
            out.append(arr[members[0]])
        else:
            out.extend(_polygons_in(shapely.union_all(arr[members])))
    mp = MultiPolygon(out)
    return mp if mp.is_valid else MultiPolygon(_polygons_in(shapely.union_all(out)))


def is_polygonal(geom: BaseGeometry) -> bool:
    """True for Polygon / MultiPolygon (empty included)."""
    return isinstance(geom, Polygon | MultiPolygon)


# ----------------------------------------------------------------------------- grid_sizes.csv

def _open_csv(path: Path, what: str):
    if not path.exists():
        raise DataError(f"{path}: {what} not found")
    if not path.is_file():
        raise DataError(f"{path}: {what} is not a file")
    # utf-8-sig: tolerate a byte-order mark written by spreadsheet programs.
    return open(path, newline="", encoding="utf-8-sig")


def read_grid_sizes(path: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """Read grid_sizes.csv into ``{image_id: (xmax, ymin)}``.

    The header must be ``,Xmax,Ymin`` (first cell empty, as in the Kaggle download). Raises
    DataError naming the file and line for a wrong header, a row without three cells, an empty
    or duplicate id, a non-numeric value, Xmax <= 0 or Ymin >= 0.
    """
    path = Path(path)
    sizes: dict[str, tuple[float, float]] = {}
    try:
        with _open_csv(path, "grid sizes file") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: file is empty (expected header ',Xmax,Ymin')")
            if tuple(c.strip() for c in header) != GRID_SIZES_HEADER:
                raise DataError(f"{path}: line 1: header must be ',Xmax,Ymin' (first cell empty), "
                                f"got {','.join(header)!r}")
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue  # blank line
                if len(row) != 3:
                    raise DataError(f"{path}: line {line}: expected 3 cells (ImageId,Xmax,Ymin), "
                                    f"got {len(row)}")
                image_id = row[0].strip()
                if not image_id:
                    raise DataError(f"{path}: line {line}: empty ImageId")
                try:
                    xmax, ymin = float(row[1]), float(row[2])
                except ValueError:
                    raise DataError(f"{path}: line {line}: Xmax/Ymin must be numbers, "
                                    f"got {row[1]!r}, {row[2]!r}") from None
                if not (math.isfinite(xmax) and xmax > 0):
                    raise DataError(f"{path}: line {line}: Xmax must be > 0, got {row[1]!r}")
                if not (math.isfinite(ymin) and ymin < 0):
                    raise DataError(f"{path}: line {line}: Ymin must be < 0, got {row[2]!r}")
                if image_id in sizes:
                    raise DataError(f"{path}: line {line}: duplicate ImageId {image_id!r}")
                sizes[image_id] = (xmax, ymin)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV: {e}") from None
    return sizes


# ----------------------------------------------------------------------------- WKT CSV files

@dataclass(frozen=True)
class WktRow:
    """One row of a WKT CSV file.

    Attributes:
        line: 1-based line number in the file (the row's last line if a field spans lines).
        image_id, class_id: the row's ImageId and ClassType (1..10).
        geometry: valid MultiPolygon in grid coordinates (empty for MULTIPOLYGON EMPTY).
        repaired: True when the WKT was invalid geometry and had to be repaired.
    """

    line: int
    image_id: str
    class_id: int
    geometry: MultiPolygon
    repaired: bool


def parse_wkt(text: str) -> tuple[MultiPolygon, bool]:
    """Parse a (Multi)Polygon WKT string into a valid MultiPolygon and a `repaired` flag.

    Raises ValueError (with the problem) for text that is not WKT, a non-polygonal geometry
    type or non-finite coordinates; callers add the file and line.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty WKT field")
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/overflow: reported below
            geom = shapely.from_wkt(text)
    except (GEOSException, ValueError) as e:
        raise ValueError(f"malformed WKT ({str(e).splitlines()[0]})") from None
    if geom is None:
        raise ValueError("malformed WKT")
    if not is_polygonal(geom):
        raise ValueError(f"expected MULTIPOLYGON or POLYGON, got {geom.geom_type}")
    if geom.is_empty:
        return MultiPolygon(), False
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise ValueError("WKT has non-finite coordinates")
    if geom.is_valid:
        return (geom if isinstance(geom, MultiPolygon) else MultiPolygon([geom])), False
    return to_multipolygon(geom), True


def _check_header(path: Path, header: list[str] | None) -> None:
    if header is None:
        raise DataError(f"{path}: file is empty (expected header {','.join(WKT_HEADER)})")
    if tuple(c.strip() for c in header) != WKT_HEADER:
        raise DataError(f"{path}: line 1: header must be {','.join(WKT_HEADER)}, "
                        f"got {','.join(header)[:80]!r}")


def _row_key(path: Path, line: int, row: list[str]) -> tuple[str, int]:
    """(ImageId, ClassType) of a row, checked: DataError naming the file and line."""
    if len(row) != 3:
        raise DataError(f"{path}: line {line}: expected 3 cells "
                        f"(ImageId,ClassType,MultipolygonWKT), got {len(row)}")
    image_id = row[0].strip()
    if not image_id:
        raise DataError(f"{path}: line {line}: empty ImageId")
    cls = row[1].strip()
    if not cls.isdigit() or int(cls) not in CLASS_IDS:
        raise DataError(f"{path}: line {line}: ClassType must be an integer "
                        f"1..{NUM_CLASSES}, got {row[1][:20]!r}")
    return image_id, int(cls)


def _parse_row(path: Path, line: int, row: list[str]) -> WktRow:
    image_id, cls = _row_key(path, line, row)
    try:
        geom, repaired = parse_wkt(row[2])
    except ValueError as e:
        raise DataError(f"{path}: line {line}: image {image_id} class {cls}: {e}") from None
    return WktRow(line, image_id, cls, geom, repaired)


def iter_wkt_rows(path: str | os.PathLike) -> Iterator[WktRow]:
    """Yield the rows of a WKT CSV (``ImageId,ClassType,MultipolygonWKT``) one by one.

    Raises DataError naming the file, line and problem for a missing file, a wrong header, a row
    without three cells, an empty ImageId, a ClassType outside 1..10 or malformed WKT.
    Invalid geometry is repaired (`WktRow.repaired`), not an error.
    """
    path = Path(path)
    try:
        with _open_csv(path, "WKT CSV file") as f:
            reader = csv.reader(f)
            _check_header(path, next(reader, None))
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                yield _parse_row(path, reader.line_num, row)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV: {e}") from None


class WktIndex:
    """Random access by image to a WKT CSV: one scan for where each row is, geometry parsed on demand.

    The scan (`__init__`) reads the file once in binary, line by line, and records for each row
    its ImageId, ClassType, last line number and byte span; it checks the header, each row's
    ImageId and ClassType and that no (image, class) repeats, but parses no WKT. `labels(id)`
    then reads and parses only that image's ten rows. Reading one image of the real
    train_wkt_v4.csv (25 images, 250 rows, tens of MB) thus costs that image's geometry, not
    everyone's. Rows are assumed to start at the beginning of a line (a quoted field may span
    lines: a line with an odd number of quote characters continues on the next one).

    Raises:
        DataError: the file is missing or not UTF-8, the header is wrong, a row lacks three cells,
            has an empty ImageId, a ClassType outside 1..10, or repeats an (image, class).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._rows: dict[str, dict[int, tuple[int, int, int]]] = {}
        _open_csv(self.path, "WKT CSV file").close()  # DataError if missing or not a file
        try:
            self._scan()
        except UnicodeDecodeError as e:
            raise DataError(f"{self.path}: not a UTF-8 text file ({e.reason})") from None
        except csv.Error as e:
            raise DataError(f"{self.path}: malformed CSV: {e}") from None

    def _scan(self) -> None:
        path = self.path
        with open(path, "rb") as f:
            first = f.readline()
            if first.startswith(b"\xef\xbb\xbf"):
                first = first[3:]
            _check_header(path, next(csv.reader([first.decode("utf-8")]), None) if first.strip() else None)
            line = 1
            while True:
                start = f.tell()
                raw = f.readline()
                if not raw:
                    break
                line += 1
                while raw.count(b'"') % 2:  # an odd number of quotes: the quoted field goes on
                    more = f.readline()
                    if not more:
                        break
                    raw += more
                    line += 1
                head = raw[:4096].decode("utf-8", errors="replace")
                if not head.strip():
                    continue
                # ImageId and ClassType are short: parse them from the row's start only (the
                # csv module reads a cut-off quoted WKT field as one cell, unchecked here).
                image_id, cls = _row_key(path, line, next(csv.reader([head]), []))
                first_line = self._rows.setdefault(image_id, {}).get(cls)
                if first_line is not None:
                    raise DataError(f"{path}: line {line}: duplicate row for image {image_id} "
                                    f"class {cls} (first on line {first_line[0]})")
                self._rows[image_id][cls] = (line, start, len(raw))

    @property
    def image_ids(self) -> list[str]:
        """The file's ImageIds in first-appearance order."""
        return list(self._rows)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self._rows

    def rows(self, image_id: str) -> list[WktRow]:
        """The image's rows, parsed and checked (`iter_wkt_rows`'s checks), in class order.

        KeyError if the file has no row for `image_id`; DataError for malformed WKT.
        """
        spans = self._rows[image_id]
        out = []
        with open(self.path, "rb") as f:
            for cls in sorted(spans):
                line, start, size = spans[cls]
                f.seek(start)
                try:
                    text = f.read(size).decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{self.path}: line {line}: not UTF-8 text ({e.reason})") from None
                try:
                    row = next(csv.reader(io.StringIO(text, newline="")), [])
                except csv.Error as e:
                    raise DataError(f"{self.path}: line {line}: malformed CSV: {e}") from None
                out.append(_parse_row(self.path, line, row))
        return out

    def labels(self, image_id: str) -> dict[int, MultiPolygon]:
        """``{class 1..10: MultiPolygon}`` of one image (grid coordinates, valid; a class
        without a row is empty), parsing only that image's rows."""
        found = {row.class_id: row.geometry for row in self.rows(image_id)}
        return {c: found.get(c, MultiPolygon()) for c in CLASS_IDS}


def read_wkt_csv(path: str | os.PathLike) -> dict[str, dict[int, MultiPolygon]]:
    """Read a WKT CSV into ``{image_id: {class_id: MultiPolygon}}`` in grid coordinates.

    Every image that appears in the file gets all ten classes: a class without a row is an
    empty MultiPolygon, like a ``MULTIPOLYGON EMPTY`` row. Images keep file order. Raises
    DataError (see `iter_wkt_rows`), also for a duplicate (ImageId, ClassType) row.
    """
    path = Path(path)
    out: dict[str, dict[int, MultiPolygon]] = {}
    seen: dict[tuple[str, int], int] = {}
    for row in iter_wkt_rows(path):
        key = (row.image_id, row.class_id)
        if key in seen:
            raise DataError(f"{path}: line {row.line}: duplicate row for image {row.image_id} "
                            f"class {row.class_id} (first on line {seen[key]})")
        seen[key] = row.line
        out.setdefault(row.image_id, {})[row.class_id] = row.geometry
    return {image_id: {c: classes.get(c, MultiPolygon()) for c in CLASS_IDS}
            for image_id, classes in out.items()}


def _format_number(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _format_ring(coords: np.ndarray, decimals: int) -> str:
    return "(" + ",".join(f"{_format_number(x, decimals)} {_format_number(y, decimals)}"
                          for x, y in coords[:, :2].tolist()) + ")"


def format_wkt(geom: BaseGeometry | None, decimals: int = 8) -> str:
    """WKT of `geom` as a valid MULTIPOLYGON with at most `decimals` decimals per coordinate.

    The geometry is repaired (`to_multipolygon`) and snapped to a 10**-decimals grid with
    `shapely.set_precision`, which keeps it valid after rounding (plain rounding of the text
    could create self-intersections Kaggle rejects). Numbers are written in fixed notation,
    trailing zeros trimmed. Empty or non-polygonal input gives ``MULTIPOLYGON EMPTY``.
    Grid coordinates span ~0.01, i.e. ~3e-6 per pixel, so 8 decimals are ~0.004 px.
    """
    mp = to_multipolygon(geom)
    if not mp.is_empty:
        mp = to_multipolygon(shapely.set_precision(mp, 10.0 ** -decimals))
    if mp.is_empty:
        return "MULTIPOLYGON EMPTY"
    polys = []
    for poly in mp.geoms:
        rings = [poly.exterior, *poly.interiors]
        polys.append("(" + ",".join(_format_ring(np.asarray(r.coords), decimals) for r in rings) + ")")
    return "MULTIPOLYGON (" + ",".join(polys) + ")"


def write_wkt_csv(path: str | os.PathLike,
                  rows: Iterable[tuple[str, int, BaseGeometry | None]],
                  decimals: int = 8) -> None:
    """Write ``(image_id, class_id, geometry)`` rows as a WKT CSV, atomically.

    Header ``ImageId,ClassType,MultipolygonWKT``; geometry formatted by `format_wkt` (valid
    MULTIPOLYGON, ``MULTIPOLYGON EMPTY`` for None/empty). The file appears only when complete.
    Raises ValueError for an empty image id or a class id outside 1..10.
    """
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(WKT_HEADER)
        for image_id, class_id, geom in rows:
            if not image_id:
                raise ValueError("empty image id in a WKT row")
            if class_id not in CLASS_IDS:
                raise ValueError(f"class id must be 1..{NUM_CLASSES}, got {class_id!r}")
            writer.writerow((image_id, int(class_id), format_wkt(geom, decimals)))
