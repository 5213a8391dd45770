"""The TRL config fields a recipe's `train:` is checked against come from a cache after the first check."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cpt.recipe.load import load_recipe
from cpt.stages import trainer_fields as tf
from cpt.stages.sft_config import _sft_config_class
from cpt.stages.trainer_args import check_trainer_args


def test_fields_are_described_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path))
    loads = []

    def load():
        loads.append(1)
        return _sft_config_class()

    first = tf.trainer_fields(load)
    second = tf.trainer_fields(load)
    assert loads == [1]  # the second call never asked for the class
    assert first == second
    assert first["learning_rate"] == {"type": "float"}
    assert first["max_length"] == {"union": [{"type": "int"}, {"type": "null"}]}
    cached = list((tmp_path / "trainer-fields").glob("*.json"))
    assert len(cached) == 1
    assert json.loads(cached[0].read_text())["fields"] == first


def test_trl_defaults_come_from_trls_config_classes(tmp_path, monkeypatch):
    """Read from the classes' fields (and cached with them), not copied: what TRL declares is what we get."""
    import dataclasses

    from cpt.stages.dpo_config import _dpo_config_class
    from cpt.stages.grpo_config import _grpo_config_class

    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path))
    for load in (_dpo_config_class, _grpo_config_class):
        declared = {f.name: f.default for f in dataclasses.fields(load())}
        defaults = tf.trainer_defaults(load)
        assert defaults and all(defaults[name] == declared[name] for name in defaults)
        assert {"beta", "learning_rate", "per_device_train_batch_size"} <= defaults.keys()
    assert tf.trainer_defaults(_dpo_config_class)["beta"] == _dpo_config_class()(output_dir=str(tmp_path), use_cpu=True, bf16=False).beta


def test_a_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path))
    tf.trainer_fields(_sft_config_class)
    (cached,) = (tmp_path / "trainer-fields").glob("*.json")
    cached.write_text("{not json")
    assert tf.trainer_fields(_sft_config_class)["learning_rate"] == {"type": "float"}
    assert json.loads(cached.read_text())["schema"] == tf.SCHEMA_VERSION


def test_checks_from_the_cache_name_the_same_problems(tmp_path, monkeypatch):
    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path))
    values = {"learning_rate": "fast", "lr_scheduler_type": 3, "max_step": 3, "bf16": True}
    for _ in range(2):  # miss, then hit
        problems = dict(check_trainer_args(_sft_config_class, values))
        assert problems["learning_rate"] == "expected float, got str 'fast'"
        assert problems["lr_scheduler_type"].startswith("expected one of 'linear', 'cosine'")
        assert problems["lr_scheduler_type"].endswith("or str, got int 3")
        assert "did you mean 'max_steps'" in problems["max_step"]
        assert "bf16" not in problems


def test_a_warm_plan_does_not_import_trl(tmp_path, toy_dir, monkeypatch):
    """The point of the cache: `cpt plan` validates `train:` without importing TRL (and PEFT, and their models)."""
    repo = tf.Path(__file__).resolve().parents[3]
    monkeypatch.setenv("CPT_CACHE_DIR", str(tmp_path))
    load_recipe(repo / "recipes" / "quickstart.yaml")  # cold, in this process (TRL is loaded here anyway)
    assert list((tmp_path / "trainer-fields").glob("*_sft_config_class*.json"))
    env_code = ("import sys; from cpt.recipe.load import load_recipe; load_recipe('recipes/quickstart.yaml'); "
                "print('trl' in sys.modules)")
    env = {"CPT_CACHE_DIR": str(tmp_path), "CPT_TOY_DIR": str(toy_dir), "PATH": "/usr/bin:/bin",
           "HF_HUB_OFFLINE": "1"}
    if "PYTHONPATH" in os.environ:  # where the packages are when they are not installed (a machine with carried wheels)
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    warm = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, env=env,
                          cwd=repo, check=True).stdout.split()[-1]
    assert warm == "False"
