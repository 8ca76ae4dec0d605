"""The package is layered: no import cycle between its modules, counting function-local and
TYPE_CHECKING imports (package __init__ files, which import their modules by design, aside).

dstl.models, bottom up: dropblock, decoder, unet, backbone -> res50unet -> hub -> pretrained
(pretrained needs the Hub download helpers; hub needs the architectures). dstl.scene reads a
dataset through a Protocol instead of importing dstl.dataset.
"""

import ast
from pathlib import Path

import dstl

PACKAGE = Path(dstl.__file__).resolve().parent


def imports_of(path: Path) -> set[str]:
    """The dstl modules `path` imports anywhere (module level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("dstl"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("dstl"))
    return out


def module_graph(folder: Path) -> dict[str, set[str]]:
    graph = {}
    for path in sorted(folder.rglob("*.py")):
        name = "dstl." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        graph[name.removesuffix(".__init__")] = imports_of(path)
    return graph


def find_cycle(graph: dict[str, set[str]], ignore: set[str]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ()) - ignore):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep] if dep in stack else [node, dep]
            if dep not in state and (cycle := visit(dep, stack + [dep])):
                return cycle
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_no_import_cycle_in_the_package():
    graph = module_graph(PACKAGE)
    assert {"dstl.models.pretrained", "dstl.models.hub", "dstl.dataset", "dstl.scene"} <= set(graph)
    packages = {"dstl." + ".".join(p.parent.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("__init__.py")}
    assert find_cycle(graph, ignore={"dstl", *packages}) is None


def test_scene_does_not_import_the_dataset():
    assert "dstl.dataset" not in module_graph(PACKAGE)["dstl.scene"]


def test_the_models_do_not_import_the_hub_layer():
    graph = module_graph(PACKAGE)
    for low in ("dstl.models.backbone", "dstl.models.unet", "dstl.models.res50unet", "dstl.models.decoder",
                "dstl.models.dropblock"):
        assert not graph[low] & {"dstl.models.hub", "dstl.models.pretrained"}, low
