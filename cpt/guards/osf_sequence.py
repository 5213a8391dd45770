"""OSF over a sequence of stages: which OSF stage this is, and the earlier OSF stages' updates.

PEFT's OSF handles one task: decompose each matrix, freeze its top `effective_rank` directions, train
the rest. For a sequence, PEFT's docs ("Training Advice for Continual Learning") and its continual
example (examples/orthogonal_subspace_learning: 0.3, 0.5, 0.7 over three tasks) re-decompose the updated
weights before each task and grow the preserved share; the paper (Nayak et al. 2025) does the same per
task. What we add, for a recipe whose stages each say the same `guard:` line:

- the record (`osf_stages.json`, one entry per OSF stage so far), which travels with the model folder
  (guards/travelling.py), so stage k knows k even when it continues from an earlier run's model and
  when plain stages came in between; `grow` reads it (config.OSFSpec.preserved_at);
- `preserve_updates`: the top `update_rank` left and right singular vectors of each such stage's update
  (W_end - W_start) per matrix (`osf_updates.safetensors`, also travelling), and `keep_clear_of`, which
  re-splits a later stage's matrix so that its update is orthogonal to them as well as to its own
  preserved top directions. The top directions of the current weights need not contain what an earlier
  stage changed (a small update hides below the preserved rank); this keeps those directions fixed.

Note: PEFT's continual example moves between tasks with `model.unload()`, which drops the adapter without
merging it (OSF trains factors beside the base weight), so each task there restarts from the base weights.
A cpt stage saves its model merged (stages/training.py), so stage k starts from stage k-1's result.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from cpt.guards.travelling import OSF_UPDATES

logger = logging.getLogger(__name__)

_RELATIVE_TOLERANCE = 1e-6  # singular values below this share of the largest count as zero


def read_updates(folder: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module name -> (left, right): earlier updates' singular vectors as rows, (n, out) and (n, in)."""
    from safetensors.torch import load_file

    path = Path(folder) / OSF_UPDATES
    if not path.is_file():
        return {}
    tensors = load_file(str(path))
    return {key[: -len(".left")]: (tensors[key], tensors[key[: -len(".left")] + ".right"])
            for key in tensors if key.endswith(".left")}


def write_updates(folder: Path, updates: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for module, (left, right) in updates.items():
        tensors[f"{module}.left"], tensors[f"{module}.right"] = left.contiguous(), right.contiguous()
    save_file(tensors, str(Path(folder) / OSF_UPDATES))


@torch.no_grad()
def update_directions(delta: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top `rank` left and right singular vectors of an update (fewer if its rank is lower), as rows."""
    u, s, vh = torch.linalg.svd(delta.float(), full_matrices=False)
    kept = min(rank, int((s > _RELATIVE_TOLERANCE * s[0]).sum())) if s.numel() and s[0] > 0 else 0
    return u[:, :kept].T.contiguous(), vh[:kept].contiguous()


def _span(basis: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
    """An orthonormal basis (columns) of span(basis, extra), `basis` orthonormal and kept as it is."""
    rest = extra - basis @ (basis.T @ extra)
    if rest.numel() == 0:
        return basis
    u, s, _ = torch.linalg.svd(rest, full_matrices=False)
    kept = s > 1e-4  # the earlier vectors are unit length: smaller leftovers lie in span(basis) already
    return torch.cat([basis, u[:, kept]], dim=1)


@torch.no_grad()
def keep_clear_of(layer, adapter: str, earlier_left: torch.Tensor, earlier_right: torch.Tensor) -> int:
    """Re-split a PEFT OSF layer so its update stays orthogonal to its preserved top directions and to
    `earlier_left` / `earlier_right` (rows). Returns the trainable rank left (0: the matrix is frozen).

    W = W_fixed + W_train with W_train = (I - P_L) W (I - P_R), P_L and P_R the projectors onto
    span(top left directions, earlier_left) and span(top right directions, earlier_right). The trainable
    factors start as W_train's SVD and are projected off those spans (PEFT's gradient hook and our
    after-step projection read `_osf_U_high` / `_osf_V_high`, so they use the spans); the update
    U S V - W_train then has no component along them.
    """
    weight = layer.get_base_layer().weight.data.float()
    top = layer.effective_rank[adapter]
    u, _, vh = torch.linalg.svd(weight, full_matrices=False)
    left = _span(u[:, :top], earlier_left.float().T.to(weight.device))
    right = _span(vh[:top].T, earlier_right.float().T.to(weight.device))
    rank = min(weight.shape[0] - left.shape[1], weight.shape[1] - right.shape[1])
    params = layer.osf_svd_params[adapter]
    if rank <= 0:
        logger.warning("OSF: %s has no direction left to train outside the preserved ones; frozen", layer)
        params.requires_grad_(False)
        return 0
    train = weight - left @ (left.T @ weight)
    train = train - (train @ right) @ right.T
    ut, st, vth = torch.linalg.svd(train, full_matrices=False)
    ut, st, vth = ut[:, :rank], st[:rank], vth[:rank]
    like = params["U_low"]
    cast = {"dtype": like.dtype, "device": like.device}
    layer._osf_U_high[adapter], layer._osf_V_high[adapter] = left.to(**cast), right.T.contiguous().to(**cast)
    layer._osf_U_low_init[adapter], layer._osf_S_low_init[adapter] = ut.to(**cast), st.to(**cast)
    layer._osf_V_low_init[adapter] = vth.to(**cast)
    layer.osf_svd_params[adapter] = torch.nn.ParameterDict({  # copies: the buffers above must not move with them
        "U_low": torch.nn.Parameter(ut.to(**cast).clone()),
        "S_low": torch.nn.Parameter(st.to(**cast).clone()),
        "V_low": torch.nn.Parameter(vth.to(**cast).clone()),
    })
    layer._detach_hooks()  # PEFT's gradient hooks sit on the replaced parameters
    layer._attach_hooks(adapter)
    return rank
