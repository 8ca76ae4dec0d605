"""Links to a view: the code the page writes, read back and checked."""

import base64
import json

import pytest

from dstl.demo.links import LINK_JS, decode_view_link, encode_view_link
from dstl.errors import DstlError

KEY = {"origin": "dataset", "image_id": "synth_9100_0_0", "model": "unet-20band", "token": "abc"}


def test_round_trip():
    code = encode_view_link(KEY, [5, 1], 0.3, [0.2] * 10, mode="Prediction ↔ ground truth", heat=5, full=True)
    link = decode_view_link(code)
    assert (link.origin, link.image_id, link.model, link.token) == \
        ("dataset", "synth_9100_0_0", "unet-20band", "abc")
    assert link.classes == (1, 5) and link.opacity == 0.3 and link.thresholds == (0.2,) * 10
    assert link.mode == "Prediction ↔ ground truth" and link.heat == 5 and link.full is True
    assert "=" not in code and "+" not in code and "/" not in code


def test_numbers_are_clamped_and_unknown_heat_class_falls_back():
    link = decode_view_link(encode_view_link(KEY, [], 7.0, [-1] + [0.5] * 9, heat=42))
    assert link.classes == () and link.opacity == 1.0 and link.thresholds[0] == 0.0 and link.heat == 1


def _code(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("code", [
    "", "%%%", "x" * 5000, _code([1, 2]), _code({"v": 2, "key": KEY}),
    _code({"v": 1, "key": {"origin": "disk"}}),
    _code({"v": 1, "key": KEY, "classes": [11]}), _code({"v": 1, "key": KEY, "thresholds": [0.5] * 3}),
    _code({"v": 1, "key": KEY, "opacity": "high"}), _code({"v": 1, "key": {**KEY, "image_id": 7}}),
])
def test_bad_links_are_clear_errors(code):
    with pytest.raises(DstlError, match="this link is not valid"):
        decode_view_link(code)


def test_the_page_script_writes_the_same_layout():
    # The browser test drives LINK_JS for real; here: it encodes the fields decode_view_link reads.
    for name in ("v: 1", "key: parsed", "classes", "opacity", "full", "mode", "heat", "thresholds", "?view="):
        assert name in LINK_JS
