"""House rules a ComfyUI user relies on, checked from the source."""
import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "nodes", "node_helpers",
                 "latent_preview", "server", "execution", "comfy_execution", "comfyui_version"}


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_swift_core_never_imports_comfyui():
    for f in (ROOT / "swift_core").rglob("*.py"):
        assert not imports(f) & COMFY_MODULES, f


def test_only_the_bridge_package_touches_comfyui_internals():
    bridge = ROOT / "nodes" / "bridge"
    assert (bridge / "__init__.py").exists()
    for f in (ROOT / "nodes").rglob("*.py"):
        used = imports(f) & COMFY_MODULES
        if bridge not in f.parents:
            assert used <= {"comfy_api"}, (f.name, used)


def test_bridge_modules_are_small_and_one_concern_each():
    for f in (ROOT / "nodes" / "bridge").glob("*.py"):
        assert len(f.read_text().splitlines()) <= 150, f.name


def test_entrypoint_without_node_class_mappings():
    src = (ROOT / "__init__.py").read_text()
    tree = ast.parse(src)
    names = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
             if isinstance(t, ast.Name)}
    assert "NODE_CLASS_MAPPINGS" not in names and "comfy_entrypoint" in src


def test_requirements_are_runtime_only():
    reqs = [re.split(r"[<>=!~\[ ]", line.strip())[0].lower()
            for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert set(reqs) == {"kornia", "safetensors"}
    # every runtime dependency is imported by the pack's runtime code, and nothing else is needed
    runtime = set()
    for f in list((ROOT / "nodes").rglob("*.py")) + list((ROOT / "swift_core").rglob("*.py")):
        runtime |= imports(f)
    assert set(reqs) <= runtime
    # the standard library, and what ComfyUI itself brings (torch; PyAV for its video nodes;
    # psutil, which ComfyUI requires: the pack also works without it)
    stdlib_or_host = COMFY_MODULES | {"torch", "av", "PIL", "psutil"} | set(sys.stdlib_module_names)
    assert runtime - stdlib_or_host <= set(reqs), runtime - stdlib_or_host


def test_registry_metadata():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    p = meta["project"]
    for key in ("name", "version", "description", "license"):
        assert p.get(key), key
    assert p["urls"]["Repository"].startswith("https://")
    comfy = meta["tool"]["comfy"]
    assert comfy["PublisherId"] and comfy["DisplayName"] and comfy["Icon"].startswith("https://")
    assert comfy["requires-comfyui"] == ">=0.3.64"
    assert "comfyui" not in p["name"].lower() and p["classifiers"]
    assert (ROOT / comfy["Icon"].split("/main/", 1)[1]).exists()
    assert (ROOT / ".github" / "workflows" / "publish.yml").exists()
    assert set(p["dependencies"]) == set(
        line for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#"))


def comfy_node_validate(folder: Path) -> subprocess.CompletedProcess:
    """comfy-cli's ``comfy node validate`` (what the registry runs before publishing) in
    ``folder``; tracking off first, so it never asks or calls out."""
    env = dict(os.environ, PYTHONUTF8="1")
    subprocess.run(["comfy", "--skip-prompt", "tracking", "disable"], cwd=folder, env=env,
                   capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    return subprocess.run(["comfy", "--skip-prompt", "node", "validate"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_comfy_node_validate_accepts_the_pack():
    r = comfy_node_validate(ROOT)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Validating node configuration" in out and "Security warnings" not in out, out


def test_comfy_node_validate_refuses_a_pyproject_without_version(tmp_path):
    text = (ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(re.sub(r'(?m)^version = ".*"$', 'version = ""', text))
    r = comfy_node_validate(tmp_path)
    assert r.returncode != 0, r.stdout + r.stderr
