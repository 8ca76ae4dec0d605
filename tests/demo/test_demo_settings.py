"""The app's flags and the environment variables (Space variables) behind their defaults."""

import pytest

from dstl.demo.settings import DemoSettings, build_service, parse_args
from dstl.errors import DstlError, WeightsError


def test_defaults_without_flags_or_environment():
    s = parse_args([], env={})
    assert s == DemoSettings()
    assert s.data is None and s.weights == [] and s.bundled and s.port is None and not s.share


def test_flags():
    s = parse_args(["--data", "/d", "--weights", "a/b@v1", "/w", "--port", "7999", "--share", "--no-bundled",
                    "--concurrency", "3", "--max-upload-mb", "5", "--max-megapixels", "2", "--cache-mb", "0"],
                   env={})
    assert (s.data, s.weights, s.port, s.share, s.bundled) == ("/d", ["a/b@v1", "/w"], 7999, True, False)
    assert (s.concurrency, s.max_upload_mb, s.max_megapixels, s.cache_mb) == (3, 5.0, 2.0, 0.0)


def test_environment_variables_set_defaults_and_flags_win():
    env = {"DSTL_WEIGHTS": "owner/one@main, owner/two  /local", "DSTL_DATA": "owner/data@v2",
           "DSTL_CONCURRENCY": "4", "DSTL_MAX_UPLOAD_MB": "50", "GRADIO_SHARE": "True",
           "DSTL_NO_BUNDLED": "1"}
    s = parse_args([], env=env)
    assert s.weights == ["owner/one@main", "owner/two", "/local"]
    assert (s.data, s.concurrency, s.max_upload_mb) == ("owner/data@v2", 4, 50.0)
    assert s.share and not s.bundled
    s = parse_args(["--weights", "x/y", "--data", "/d", "--concurrency", "1"], env=env)
    assert (s.weights, s.data, s.concurrency) == (["x/y"], "/d", 1)


@pytest.mark.parametrize("argv, env, match", [
    (["--concurrency", "0"], {}, "--concurrency must be at least 1"),
    (["--max-upload-mb", "0"], {}, "--max-upload-mb must be positive"),
    ([], {"DSTL_MAX_UPLOAD_MB": "lots"}, "DSTL_MAX_UPLOAD_MB='lots' is not a number"),
])
def test_bad_values_are_clear_errors(argv, env, match):
    with pytest.raises(DstlError, match=match):
        parse_args(argv, env=env)


def test_help_lists_every_flag_with_its_variable(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"], env={})
    text = capsys.readouterr().out
    for flag in ("--data", "--weights", "--port", "--share", "--concurrency", "--max-upload-mb"):
        assert flag in text
    for var in ("DSTL_DATA", "DSTL_WEIGHTS", "GRADIO_SERVER_PORT", "DSTL_CONCURRENCY"):
        assert var in text


def test_build_service_serves_the_given_weights_and_data(tiny_weights, dstl_folder):
    s = parse_args(["--data", str(dstl_folder), "--weights", str(tiny_weights["rgb"]),
                    str(tiny_weights["m20"]), "--no-bundled", "--max-upload-mb", "2",
                    "--max-megapixels", "0.5"], env={})
    service = build_service(s)
    assert service.registry.keys == ["rgb", "m20"] and service.registry.default_key == "rgb"
    assert service.image_ids == ["9001_0_0", "9001_1_2", "9002_3_4"]
    assert service.limits.max_bytes == 2 * 2**20 and service.limits.max_pixels == 500_000


def test_build_service_without_any_weights_says_so(dstl_folder):
    with pytest.raises(WeightsError, match="no weights to serve"):
        build_service(parse_args(["--data", str(dstl_folder), "--no-bundled"], env={}))


def test_mcp_needs_the_mcp_package(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mcp" else real(name, *a))
    with pytest.raises(DstlError, match=r"--mcp needs the mcp package, which is not installed: pip install"):
        parse_args(["--mcp"], env={})
    with pytest.raises(DstlError, match="--mcp needs the mcp package"):
        parse_args([], env={"DSTL_MCP": "1"})
    assert parse_args([], env={}).mcp is False
