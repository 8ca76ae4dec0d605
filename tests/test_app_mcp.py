"""`python app.py --mcp`: the segment endpoint as a tool of Gradio's MCP server, called by an MCP client.

Needs the `mcp` package (`pip install "gradio[mcp]==6.31.0"`), which requirements-dev.txt does not
pin (gradio's extra wants pydantic <= 2.12.5); the test is skipped without it. The app runs in this
process on a tiny synthetic dataset with a tiny randomly initialised 20-band UNet.
"""

import asyncio
import json
import urllib.request

import pytest

from tests.app_harness import save_tiny_model, serve_app

mcp = pytest.importorskip("mcp", reason="the mcp package is not installed: pip install 'gradio[mcp]==6.31.0'")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from dstl.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("mcp-app")
    generate_dataset(root / "data", n_train=1, n_test=0, size=(96, 112), seed=5)
    weights = save_tiny_model(root / "m20", 20, 1)
    with serve_app(["--data", str(root / "data"), "--weights", str(weights), "--no-bundled", "--mcp"],
                   name="dstl_app_mcp") as served:
        yield served


def test_segment_is_the_only_tool_and_its_parameters_are_described(server):
    with urllib.request.urlopen(server["url"] + "gradio_api/mcp/schema", timeout=60) as r:
        tools = json.loads(r.read())
    assert [t["name"] for t in tools] == ["segment"]
    properties = tools[0]["inputSchema"]["properties"]
    assert set(properties) == {"model", "image_id", "files"}
    assert "dataset" in properties["image_id"]["description"]


def test_an_mcp_client_segments_a_dataset_image(server):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    image_id = server["service"].dataset.image_ids[0]

    async def call():
        async with streamable_http_client(server["url"] + "gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await session.call_tool("segment", {"image_id": image_id})

    result = asyncio.run(call())
    assert not result.isError
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert f"{image_id}_overlay.png" in text and '"model": "m20"' in text.replace("'", '"')
