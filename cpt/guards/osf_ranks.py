"""OSF's adaptive option, which PEFT lacks: a preserved share per decoder layer from its importance.

Importance of layer l on a sample of earlier data is 1 - cos(input, output) of its hidden states,
averaged over tokens (a layer that changes its input a lot carries more of what that data needs;
the measure Sculpting Subspaces takes from AdaSVD). Importances are min-max normalised across layers
and mapped linearly onto [min_preserved, max_preserved]; the share becomes a PEFT OSF `rank_pattern`
entry for every target matrix in that layer.
"""

from __future__ import annotations

import torch

from cpt.guards.config import AdaptiveRankSpec


@torch.no_grad()
def layer_importance(model, tokenizer, texts: list[str], max_length: int = 256) -> list[float]:
    """1 - mean cosine similarity between each decoder layer's input and output hidden states."""
    layers = model.get_decoder().layers
    sums = [0.0] * len(layers)
    count = 0
    captured: dict[int, torch.Tensor] = {}

    def hook(index):
        def record(module, args, output):
            hidden_in = args[0] if args else None
            hidden_out = output[0] if isinstance(output, tuple) else output
            captured[index] = torch.nn.functional.cosine_similarity(hidden_in.float(), hidden_out.float(), dim=-1)
        return record

    handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        model.eval()
        for text in texts:
            batch = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length).to(model.device)
            model(**batch)
            count += 1
            for i in range(len(layers)):
                sums[i] += captured[i].mean().item()
    finally:
        for handle in handles:
            handle.remove()
    return [1.0 - s / max(count, 1) for s in sums]


def preserved_shares(importance: list[float], spec: AdaptiveRankSpec) -> list[float]:
    """Importance -> preserved share per layer, linear between spec.min_preserved and spec.max_preserved."""
    low, high = min(importance), max(importance)
    spread = high - low
    normalised = [(v - low) / spread if spread > 0 else 0.5 for v in importance]
    return [spec.min_preserved + n * (spec.max_preserved - spec.min_preserved) for n in normalised]


def rank_pattern(shares: list[float]) -> dict[str, float]:
    """PEFT OSF rank_pattern: a regex per decoder layer -> its preserved share of each matrix's rank."""
    # PEFT matches keys with re.search and warns about keys that fail re.match("(.*\.)?(KEY)$"): this form passes both.
    return {rf"layers\.{i}\..*": share for i, share in enumerate(shares)}
