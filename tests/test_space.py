"""The Space's front matter and requirements against what the Hub's ZeroGPU docs accept.

From huggingface/hub-docs ``docs/hub/spaces-zerogpu.md`` as last changed on 2026-07-21: ZeroGPU runs Python 3.12.12
or 3.10.13, torch 2.8.0, 2.9.1, 2.10.0 or 2.11.0, and the Gradio SDK only. This project's machines and CI run
Python 3.11 with torch 2.13.0 from a local CPU wheel. ``spaces-config-reference.md``: ``preload_from_hub`` lists
repositories to download at build time.
"""

from __future__ import annotations

import tomllib

import yaml
from packaging.requirements import Requirement

from rag.settings import DEFAULT_CONFIG, ROOT

ZEROGPU_PYTHONS = {"3.12.12", "3.10.13"}
ZEROGPU_TORCH = {"2.8.0", "2.9.1", "2.10.0", "2.11.0"}
CI_TORCH = "2.13.0"  # the local CPU wheel for Python 3.11


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def requirements(python: str) -> dict[str, Requirement]:
    """name -> requirement of requirements.txt, as pip sees them on ``python`` (markers evaluated)."""
    env = {"python_version": ".".join(python.split(".")[:2]), "python_full_version": python}
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                assert req.name not in found, f"{req.name} is pinned twice for Python {python}"
                found[req.name] = req
    return found


def pinned(req: Requirement) -> str:
    (spec,) = req.specifier
    assert spec.operator == "==", req
    return spec.version


def test_the_space_runs_on_zerogpu() -> None:
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    python = str(meta["python_version"])
    assert python in ZEROGPU_PYTHONS and tuple(map(int, python.split("."))) >= (3, 11)  # we need tomllib
    space = requirements(python)
    assert pinned(space["torch"]) in ZEROGPU_TORCH
    assert pinned(space["gradio"]) == str(meta["sdk_version"])  # the SDK the Space runs is the one we test


def test_this_projects_machines_keep_their_torch() -> None:
    ours = requirements("3.11.7")
    assert pinned(ours["torch"]) == CI_TORCH
    assert {n for n in ours} == {n for n in requirements("3.12.12")}  # the same packages on every hosting


def test_both_default_models_are_preloaded_at_build_time() -> None:
    with open(DEFAULT_CONFIG, "rb") as f:
        models = tomllib.load(f)["models"]
    defaults = {models["embedding_model"], models["reranker_model"]}
    meta = front_matter()
    assert defaults <= set(meta["preload_from_hub"]) and defaults <= set(meta["models"])
