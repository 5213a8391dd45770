"""Every recipe shipped under recipes/ parses and validates (the cluster ones cannot run here)."""

from __future__ import annotations

import pytest

from cpt.recipe.load import load_recipe
from tests.helpers import REPO

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


def test_there_are_recipes():
    assert any(p.name == "quickstart.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_recipe_validates(path):
    recipe = load_recipe(path)
    assert recipe.stages, path
    text = path.read_text(encoding="utf-8")
    assert text.lstrip().startswith("#"), f"{path.name} should start with a header saying how to launch it"
