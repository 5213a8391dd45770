"""The embedded default: a tiny locally built Llama, its tokenizer, a synthetic task suite and text domains.

    from cpt.toy import ensure_toy
    root = ensure_toy()   # builds once into $CPT_TOY_DIR or ~/.cache/cpt/toy-v3, then reuses it

Layout: root/model (HF folder), root/tasks/<task>/{train,test}.jsonl + <task>.yaml + test.parquet (lm-eval),
root/domains/<domain>/{train,validation}.jsonl, root/BUILD_INFO.json (written last).
"""

from cpt.toy.build import build_toy, ensure_toy, toy_root
from cpt.toy.corpus import TOY_DOMAINS
from cpt.toy.tasks import GENERAL_TASKS, TOY_TASKS, check_answer

__all__ = ["GENERAL_TASKS", "TOY_DOMAINS", "TOY_TASKS", "build_toy", "check_answer", "ensure_toy", "toy_root"]
