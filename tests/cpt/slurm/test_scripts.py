"""`cpt slurm` writes its sbatch scripts safely: bad option values are refused (exit 2), and hostile
strings in the recipe path, the overrides or the run directory reach the command as plain arguments:
the stage script is executed under bash with stand-in `srun` and `scontrol` (no cluster needed) and
nothing injected runs. Stage jobs own whole nodes unless told otherwise, and only the USR1 sent before
the time limit requeues a job; a TERM (scancel) stops it at a checkpoint and leaves it stopped. A cpt stage
on a local or `datasets` domain gets a CPU job first that runs `cpt prepare` (executed here too: it fills
the token cache), and the stages wait for it.
Run: python -m pytest tests/cpt/slurm/test_scripts.py"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from cpt.cli import main
from cpt.recipe.load import load_recipe
from cpt.slurm.scripts import ClusterShape, write_scripts
from tests.helpers import REPO, write_recipe

HOSTILE = 'x"; touch {pwned}; echo "$(touch {pwned})`touch {pwned}`'


def _recipe(path, output_dir):
    return write_recipe(path, {
        "run": {"name": "s", "output_dir": str(output_dir)}, "model": {"name_or_path": "toy"},
        "stages": [{"name": "a", "kind": "sft", "data": {"toy": "date_format"}},
                   {"name": "b", "kind": "sft", "data": {"toy": "sorting"}, "eval": False}],
        "eval": {"tasks": ["date_format"]},
    })


def _stub(bin_dir, name, body):
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def test_hostile_strings_reach_the_launch_as_plain_arguments(tmp_path):
    pwned = tmp_path / "PWNED"  # the hostile strings create it, relative to the script's working directory
    folder = tmp_path / "dir $(touch PWNED) ;x"
    folder.mkdir()
    recipe_path = _recipe(folder / "r.yaml", folder / "runs")
    override = HOSTILE.format(pwned="PWNED")
    recipe = load_recipe(recipe_path, [])
    jobs = write_scripts(recipe, recipe_path, [override], folder / "runs" / "s", ClusterShape(nodes=2))
    assert [j.name for j in jobs] == ["a", "b", "eval", "report"]
    assert [j.depends_on for j in jobs] == [[], ["a"], ["b"], ["eval"]]

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "srun_args.json"
    # Stand-ins: srun records its arguments; scontrol answers the two questions the script asks.
    _stub(bin_dir, "srun", f'{sys.executable} -c "import json,sys; json.dump(sys.argv[1:], open(\'{args_file}\', \'w\'))" "$@"\n')
    _stub(bin_dir, "scontrol", 'case "$2" in hostnames) echo n1;; node) echo "NodeName=n1 NodeAddr=10.0.0.7 Port=1";; esac\n')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "1234",
           "SLURM_JOB_NODELIST": "n[1-2]", "SLURM_CPUS_ON_NODE": "16"}
    result = subprocess.run(["bash", str(jobs[0].path)], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert not pwned.exists(), "a string from the recipe or the command line ran as a command"

    args = json.loads(args_file.read_text())
    assert override in args and str(recipe_path.resolve()) in args
    assert args[args.index("--main_process_ip") + 1] == "10.0.0.7"
    assert args[args.index("--main_process_port") + 1] == str(29500 + 1234 % 1000)
    assert args[args.index("--num_processes") + 1] == "2"
    assert args[:3] == ["--kill-on-bad-exit=1", "--ntasks-per-node=1", "--cpus-per-task=16"]  # the node's CPUs
    assert args[-3:] == ["--until", "a", "--no-eval"]
    eval_script = jobs[2].path.read_text()
    assert "#SBATCH --array=0-1" in eval_script and "checkpoints=(base a)" in eval_script


def _headers(path) -> list[str]:
    return [line.split(None, 1)[1] for line in path.read_text().splitlines() if line.startswith("#SBATCH")]


def test_stage_jobs_own_whole_nodes_by_default(tmp_path):
    recipe_path = _recipe(tmp_path / "r.yaml", tmp_path / "runs")
    assert main(["slurm", str(recipe_path), "--nodes", "2", "--time", "04:00:00"]) == 0
    stage = _headers(tmp_path / "runs" / "s" / "slurm" / "00-a.sbatch")
    assert {"--exclusive", "--mem=0", "--nodes=2", "--ntasks-per-node=1", "--time=04:00:00", "--requeue",
            "--signal=B:USR1@600"} <= set(stage)
    assert not any(h.startswith("--cpus-per-task") for h in stage)  # the srun step asks for the node's CPUs


def test_stage_job_resources_from_the_command_line(tmp_path):
    recipe_path = _recipe(tmp_path / "r.yaml", tmp_path / "runs")
    assert main(["slurm", str(recipe_path), "--no-exclusive", "--mem", "500G", "--cpus-per-task", "12",
                 "--grace", "900"]) == 0
    script = tmp_path / "runs" / "s" / "slurm" / "00-a.sbatch"
    stage = _headers(script)
    assert {"--mem=500G", "--cpus-per-task=12", "--signal=B:USR1@900"} <= set(stage)
    assert "--exclusive" not in stage
    assert "cpus_per_task=12\n" in script.read_text()


@pytest.mark.parametrize("stop_signal, requeued, status", [(signal.SIGUSR1, True, 0), (signal.SIGTERM, False, 75)])
def test_only_the_time_limit_signal_requeues(tmp_path, stop_signal, requeued, status):
    """The stage script under bash with a stand-in srun that behaves as a stage does: it waits for the stop
    file, then exits 75 (stopped at a checkpoint). USR1 requeues the job; TERM (scancel) does not."""
    recipe_path = _recipe(tmp_path / "r.yaml", tmp_path / "runs")
    jobs = write_scripts(load_recipe(recipe_path, []), recipe_path, [], tmp_path / "runs" / "s", ClusterShape())
    bin_dir, started, calls = tmp_path / "bin", tmp_path / "started", tmp_path / "scontrol_calls"
    bin_dir.mkdir()
    _stub(bin_dir, "srun", f'touch {started}\nwhile [ ! -e "$CPT_STOP_FILE" ]; do sleep 0.1; done\nexit 75\n')
    _stub(bin_dir, "scontrol", f'echo "$@" >> {calls}\ncase "$2" in hostnames) echo n1;; '
                               'node) echo "NodeName=n1 NodeAddr=10.0.0.7";; esac\n')
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "77", "SLURM_JOB_NODELIST": "n1",
           "SLURM_CPUS_ON_NODE": "4"}
    job = subprocess.Popen(["bash", str(jobs[0].path)], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while not started.exists() and time.time() < deadline:
        time.sleep(0.1)
    job.send_signal(stop_signal)
    output, _ = job.communicate(timeout=30)
    assert job.returncode == status, output
    assert ("requeue 77" in calls.read_text().splitlines()) == requeued, output
    assert not (tmp_path / "runs" / "s" / "slurm" / "stop-77").exists()


@pytest.mark.parametrize("option, message", [
    (["--partition", "gpu;rm -rf /"], "--partition 'gpu;rm -rf /': expected a partition name"),
    (["--time", "1 day"], "--time '1 day': expected a Slurm time limit"),
    (["--nodes", "0"], "--nodes and --procs-per-node must be 1 or more"),
    (["--launch", "zero9"], "--launch zero9: neither a config in recipes/launch/"),
    (["--mem", "lots"], "--mem 'lots': expected a size per node as Slurm takes it"),
    (["--cpus-per-task", "0"], "--cpus-per-task must be 1 or more"),
    (["--prepare-cpus", "0"], "--prepare-cpus must be 1 or more"),
    (["--prepare-mem", "0"], "--prepare-mem '0': expected a size"),
    (["--time", "10:00"], "--grace 600: the stop signal would come before the job starts working (--time 10:00 is 600 s)"),
])
def test_bad_options_exit_2_before_writing(tmp_path, capsys, option, message):
    recipe_path = _recipe(tmp_path / "r.yaml", tmp_path / "runs")
    assert main(["slurm", str(recipe_path), *option]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_status_before_submitting_names_the_missing_file(tmp_path, capsys):
    assert main(["slurm", "status", str(tmp_path)]) == 2
    assert f"{tmp_path}/slurm/jobs.json not found" in capsys.readouterr().err


def test_launch_configs_say_what_their_names_say():
    configs = {name: yaml.safe_load((REPO / "recipes" / "launch" / f"{name}.yaml").read_text())
               for name in ("ddp", "zero2", "zero3")}
    assert configs["ddp"]["distributed_type"] == "MULTI_GPU"
    for stage in (2, 3):
        deepspeed = configs[f"zero{stage}"]["deepspeed_config"]
        assert deepspeed["zero_stage"] == stage
        assert deepspeed["deepspeed_multinode_launcher"] == "standard"  # pdsh would start one process per node
    assert configs["zero3"]["deepspeed_config"]["zero3_save_16bit_model"] is True


def _cpt_recipe(path, output_dir, data):
    return write_recipe(path, {
        "run": {"name": "s", "output_dir": str(output_dir)}, "model": {"name_or_path": "toy"},
        "stages": [{"name": "pre", "kind": "cpt", "domains": [{"name": "web", "data": data}],
                    "train": {"max_steps": 2, "max_length": 32}},
                   {"name": "b", "kind": "sft", "data": {"toy": "sorting"}}],
        "eval": {"tasks": ["sorting"]},
    })


@pytest.mark.slow  # the prepare script runs `cpt prepare` for real: about 13 s
def test_a_prepare_job_tokenises_before_the_stages(tmp_path, toy_dir):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cpt.toy.corpus import domain_texts

    (tmp_path / "corpus").mkdir()
    pq.write_table(pa.table({"text": domain_texts("legal", "train", 0)[:300]}), tmp_path / "corpus" / "part-0.parquet")
    recipe_path = _cpt_recipe(tmp_path / "r.yaml", tmp_path / "runs", {"path": str(tmp_path / "corpus")})
    run_dir = tmp_path / "runs" / "s"
    shape = ClusterShape(nodes=2, gpus_per_node=8, partition="gpu", prepare_partition="cpu")
    jobs = write_scripts(load_recipe(recipe_path, []), recipe_path, [], run_dir, shape)
    assert [j.name for j in jobs] == ["prepare", "pre", "b", "eval", "report"]
    assert [j.depends_on for j in jobs] == [[], ["prepare"], ["pre"], ["b"], ["eval"]]
    headers = _headers(jobs[0].path)
    assert {"--nodes=1", "--ntasks=1", "--cpus-per-task=8", "--mem=32G", "--partition=cpu", "--requeue"} <= set(headers)
    assert not any("gpus" in h for h in headers) and "--partition=gpu" in _headers(jobs[1].path)

    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"), "PYTHONPATH": str(REPO)}
    result = subprocess.run(["bash", str(jobs[0].path)], env=env, cwd=REPO, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("pre/web: ") and "300 documents" in result.stdout
    assert len(list((run_dir / "cache" / "tokens").glob("*.arrow"))) == 1


def test_toy_domains_need_no_prepare_job_unless_asked(tmp_path):
    quickstart = load_recipe(REPO / "recipes" / "quickstart.yaml", [f"run.output_dir={tmp_path}"])
    names = [j.name for j in write_scripts(quickstart, REPO / "recipes" / "quickstart.yaml", [], tmp_path / "q",
                                           ClusterShape())]
    assert names[0] == "pretrain"
    asked = write_scripts(quickstart, REPO / "recipes" / "quickstart.yaml", [], tmp_path / "q",
                          ClusterShape(prepare=True))
    assert [j.name for j in asked][:2] == ["prepare", "pretrain"] and asked[1].depends_on == ["prepare"]
    big = _cpt_recipe(tmp_path / "r.yaml", tmp_path / "runs", {"hf": "HuggingFaceFW/fineweb-edu", "max_examples": 9})
    assert main(["slurm", str(big), "--no-prepare"]) == 0
    assert not (tmp_path / "runs" / "s" / "slurm" / "00-prepare.sbatch").exists()
    assert main(["slurm", str(big)]) == 0
    assert (tmp_path / "runs" / "s" / "slurm" / "00-prepare.sbatch").exists()
