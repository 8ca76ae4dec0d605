"""Links to a view of the page: what "Copy a link to this view" puts in the address, and reading it back.

A link is the page's address with ``?view=CODE``, where CODE is the URL-safe base64 (RFC 4648 §5,
padding stripped) of a UTF-8 JSON object, written by the page's own script (`LINK_JS`), so that
copying a link needs no request to the server:

    {"v": 1,
     "key": {"origin": "dataset" | "upload", "image_id": ..., "model": ..., "token": ...,
             "other_model": ..., "other_token": ...},   # which result (and second model) is shown
     "classes": [ids shown], "opacity": 0..1, "thresholds": [10 floats],
     "mode": the compare slider's mode, "heat": class id of the heat map, "full": bool}

Opening it shows the same image, model, classes, opacity and thresholds, live. A dataset image is
segmented again if the server no longer keeps its result; an upload exists only as the result the
server keeps under its token, so its link works while that result is kept (see
`dstl.demo.store`), and explains itself afterwards. Nothing in a link is trusted: ids are looked up
in the dataset's list, models in the model menu, tokens in the store, numbers clamped.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field

from dstl.classes import NUM_CLASSES, class_by_id
from dstl.errors import DstlError

__all__ = ["LINK_JS", "ViewLink", "decode_view_link", "encode_view_link"]

#: Largest link code accepted (a real one is a few hundred characters).
MAX_CODE_CHARS = 4096

#: The page's script for the link button: inputs (view key, classes, opacity, full resolution,
#: mode, heat-map class, ten thresholds) -> the link, also written to the clipboard when allowed.
LINK_JS = """(key, classes, opacity, full, mode, heat, ...thresholds) => {
  let parsed = null;
  try { parsed = key ? JSON.parse(key) : null; } catch (e) { parsed = null; }
  const data = {v: 1, key: parsed, classes: classes, opacity: opacity, full: full, mode: mode, heat: heat,
                thresholds: thresholds};
  const bytes = new TextEncoder().encode(JSON.stringify(data));
  let binary = '';
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  const code = btoa(binary).replace(/[+]/g, '-').replace(/[/]/g, '_').replace(/=+$/, '');
  const url = window.location.origin + window.location.pathname + '?view=' + code;
  if (navigator.clipboard) { navigator.clipboard.writeText(url).catch(() => {}); }
  return url;
}"""


@dataclass
class ViewLink:
    """A decoded link: the result it names and the view to show it with."""

    origin: str
    image_id: str
    model: str | None
    token: str | None = None
    other_model: str | None = None
    other_token: str | None = None
    classes: tuple[int, ...] = field(default_factory=lambda: tuple(range(1, NUM_CLASSES + 1)))
    opacity: float = 0.5
    thresholds: tuple[float, ...] | None = None
    mode: str | None = None
    heat: int = 1
    full: bool = False


def _text(value, name: str, limit: int = 200) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise DstlError(f"this link is not valid ({name})")
    return value


def _number(value, name: str, lo: float = 0.0, hi: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DstlError(f"this link is not valid ({name})")
    return float(min(hi, max(lo, value)))


def decode_view_link(code: str) -> ViewLink:
    """The `ViewLink` of a ``?view=`` code; DstlError("this link is not valid ...") otherwise."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_CHARS:
        raise DstlError("this link is not valid (it is empty or far too long)")
    try:
        raw = base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise DstlError("this link is not valid (it was cut short or changed); copy it again") from None
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("key"), dict):
        raise DstlError("this link is not valid (unknown layout)")
    key = data["key"]
    origin = key.get("origin")
    if origin not in ("dataset", "upload"):
        raise DstlError("this link is not valid (origin)")
    classes = data.get("classes", list(range(1, NUM_CLASSES + 1)))
    if not isinstance(classes, list) or len(classes) > NUM_CLASSES:
        raise DstlError("this link is not valid (classes)")
    try:
        shown = tuple(sorted({class_by_id(int(c)).id for c in classes if not isinstance(c, bool)}))
    except (ValueError, TypeError):
        raise DstlError("this link is not valid (classes)") from None
    thresholds = data.get("thresholds")
    if thresholds is not None:
        if not isinstance(thresholds, list) or len(thresholds) != NUM_CLASSES:
            raise DstlError("this link is not valid (thresholds)")
        thresholds = tuple(_number(t, "thresholds") for t in thresholds)
    heat = data.get("heat", 1)
    try:
        heat = class_by_id(int(heat)).id if not isinstance(heat, bool) else 1
    except (ValueError, TypeError):
        heat = 1
    return ViewLink(origin=origin, image_id=_text(key.get("image_id"), "image id") or "",
                    model=_text(key.get("model"), "model"), token=_text(key.get("token"), "token"),
                    other_model=_text(key.get("other_model"), "model"),
                    other_token=_text(key.get("other_token"), "token"), classes=shown,
                    opacity=_number(data.get("opacity", 0.5), "opacity"), thresholds=thresholds,
                    mode=_text(data.get("mode"), "mode"), heat=heat, full=bool(data.get("full", False)))


def encode_view_link(key: dict, classes, opacity: float, thresholds, *, mode: str | None = None,
                     heat: int = 1, full: bool = False) -> str:
    """The ``?view=`` code `LINK_JS` writes for these values (for tests and scripts)."""
    data = {"v": 1, "key": key, "classes": list(classes), "opacity": opacity, "full": full, "mode": mode,
            "heat": heat, "thresholds": list(thresholds)}
    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
