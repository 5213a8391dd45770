"""Recipe section `guard:` of a stage: one anti-forgetting method on the model or the loss.

    guard: {method: olora}                                   # O-LoRA, paper defaults r=8, alpha=32, lambda1=0.5
    guard: {method: osf, preserved: 0.5}                     # OSF: top half of each matrix's spectrum frozen
    guard: {method: osf, adaptive: {stages: [sft_a]}}        # preserved rank per layer from earlier data
    guard: {method: osf, preserved: 0.3, grow: 0.2}          # OSF stage k of the run preserves min(0.3 + 0.2(k-1), 0.9)
    guard: {method: osf, preserve_updates: true}             # and/or keep clear of earlier OSF stages' updates
    guard: {method: kl_anchor, weight: 1.0}                  # KL(pi || pi_start) on the trained tokens (sft, cpt)
    guard: {method: kl_anchor, distance: l2, weight: 0.01}   # or the squared distance to the start weights
    guard: {method: freeze, layers: 8}                       # embeddings + bottom 8 decoder layers kept as they are
    guard: {method: freeze, layers: 2, modules: [mlp]}       # and every layer's MLP: only attention trains above
    guard: {method: freeze, layers: 2, density: 0.1}         # and 90% of each weight above: sparse fine-tuning
    guard: {method: gpm, text: general.txt}                  # each layer's output on the text's inputs kept

Replay, the data-side guard, is the stage's `replay:` key (sft_config.ReplaySpec) and combines with any
of these.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from cpt.core.recipe_base import StrictModel
from cpt.data.earlier import EarlierDataSpec
from cpt.errors import UserError

GUARD_METHODS = ("olora", "osf", "kl_anchor", "freeze", "gpm")
ADAPTER_GUARDS = ("olora", "osf")  # guards that wrap the model in a PEFT adapter (so no `peft:` beside them)
# Guards that need every weight whole on each rank while training, so not under ZeRO-3: OSF decomposes and
# projects each matrix, the KL anchor runs a second full model beside the trained one, GPM projects each weight.
WHOLE_WEIGHT_GUARDS = ("osf", "kl_anchor", "gpm")

# The paper applies O-LoRA to the attention query and value projections (Wang et al. 2023, sec. 4).
OLORA_TARGETS = ["q_proj", "v_proj"]


class OLoRASpec(StrictModel):
    """A new LoRA per stage, kept orthogonal to the earlier stages' (whose updates are merged in)."""

    method: Literal["olora"]
    r: int = Field(8, gt=0)
    alpha: int = Field(32, gt=0)
    lambda1: float = Field(0.5, ge=0.0, description="weight of sum |A_prev A_new^T| (orthogonality)")
    lambda2: float = Field(0.0, ge=0.0, description="weight of the new LoRA's L2 norm")
    target_modules: list[str] = Field(default_factory=lambda: list(OLORA_TARGETS))


class AdaptiveRankSpec(EarlierDataSpec):
    """Preserved rank per layer from its importance on a sample of earlier data (the paper's adaptive option)."""

    rows: int = Field(32, gt=0, description="rows of earlier data the importance is measured on")
    min_preserved: float = Field(0.1, gt=0.0, lt=1.0, description="preserved share for the least important layer")
    max_preserved: float = Field(0.9, gt=0.0, lt=1.0, description="preserved share for the most important layer")

    @model_validator(mode="after")
    def _ordered(self) -> AdaptiveRankSpec:
        if self.min_preserved > self.max_preserved:
            raise ValueError("min_preserved must not exceed max_preserved")
        return self


class OSFSpec(StrictModel):
    """Orthogonal subspace fine-tuning through PEFT's OSF: top singular directions frozen, the rest trained.

    Over a sequence (the same line on every OSF stage; which OSF stage this is, k, comes from the record
    that travels with the model, guards/osf_sequence.py): `grow` raises the preserved share by that much
    per earlier OSF stage, up to `grow_cap`; `preserve_updates` also keeps each stage's update clear of
    the top `update_rank` directions of every earlier preserve_updates stage's update.
    """

    method: Literal["osf"]
    preserved: float = Field(0.5, gt=0.0, lt=1.0, description="share of each matrix's rank kept frozen")
    adaptive: AdaptiveRankSpec | None = None
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    grow: float | None = Field(None, gt=0.0, lt=1.0, description="preserved share added per earlier OSF stage")
    grow_cap: float = Field(0.9, gt=0.0, lt=1.0, description="the most a share grows to (with grow)")
    preserve_updates: bool = Field(False, description="keep this stage's update clear of earlier OSF updates")
    update_rank: int = Field(8, gt=0, description="directions kept per matrix of each stage's update")

    @model_validator(mode="after")
    def _sequence_settings_fit(self) -> OSFSpec:
        given = self.model_fields_set
        if "grow_cap" in given and self.grow is None:
            raise ValueError("grow_cap is the limit of grow: set grow too (e.g. grow: 0.2)")
        if "update_rank" in given and not self.preserve_updates:
            raise ValueError("update_rank is used with preserve_updates: true only")
        if self.grow is not None and self.adaptive is None and self.grow_cap < self.preserved:
            raise ValueError(f"grow_cap ({self.grow_cap}) is below preserved ({self.preserved}): "
                             "the share would shrink, not grow")
        return self

    def plan_settings(self) -> dict:
        """The settings `cpt plan` shows: the sequence keys only where they act."""
        hidden = {"method"} | ({"grow_cap"} if self.grow is None else set())
        hidden |= set() if self.preserve_updates else {"preserve_updates", "update_rank"}
        return self.model_dump(exclude=hidden, exclude_none=True)

    def preserved_at(self, share: float, earlier_stages: int) -> float:
        """The preserved share `share` (of OSF stage 1) at the OSF stage after `earlier_stages` others:
        grown by `grow` per earlier stage up to `grow_cap`, never lowered by the cap."""
        if self.grow is None:
            return share
        return round(max(share, min(share + self.grow * earlier_stages, self.grow_cap)), 6)


class KLAnchorSpec(StrictModel):
    """A term pulling the model towards the stage's starting model (sft and cpt stages)."""

    method: Literal["kl_anchor"]
    distance: Literal["kl", "l2"] = "kl"
    weight: float = Field(1.0, gt=0.0)
    text: str | None = Field(None, description="a text file, one passage per line: the KL is taken on these "
                             "passages, each continued by the starting model, instead of on the stage's own rows")
    continue_tokens: int = Field(48, ge=0, description="greedy tokens the starting model adds to each passage of text")

    @model_validator(mode="after")
    def _text_needs_kl(self):
        if self.text is not None and self.distance != "kl":
            raise ValueError("text is read by the kl distance only; drop text or set distance: kl")
        return self

    def plan_settings(self) -> dict:
        """The settings `cpt plan` shows: `continue_tokens` only with the `text` it applies to."""
        return self.model_dump(exclude={"method", *(() if self.text else ("continue_tokens",))}, exclude_none=True)


class FreezeSpec(StrictModel):
    """The input embeddings and the bottom `layers` decoder layers keep their starting weights (full fine-tuning
    of the rest; any stage kind). Spurious forgetting (Zheng et al. 2025): freeze the bottom layers."""

    method: Literal["freeze"]
    # No default: how many of a model's layers to keep is the recipe's choice (SmolLM2-135M has 30, a 7B 32).
    layers: int = Field(ge=0, description="bottom decoder layers kept as they are")
    embeddings: bool = Field(True, description="keep the input embeddings (and a head tied to them) too")
    modules: list[str] = Field(default_factory=list, description="submodules of every decoder layer kept too, "
                               "by attribute name (Llama-type: mlp, self_attn): [mlp] trains attention only")
    density: float | None = Field(None, gt=0.0, lt=1.0, description="train only this share of each weight that "
                                  "still trains: the entries with the largest gradient on the stage's first rows")
    calibration_batches: int = Field(8, gt=0, description="batches whose summed gradient picks them (with density)")

    @model_validator(mode="after")
    def _freezes_something(self) -> FreezeSpec:
        if self.layers == 0 and not self.modules and self.density is None:
            raise ValueError("layers: 0 with neither modules nor density keeps nothing: give layers > 0 "
                             "(e.g. layers: 2), modules or density")
        if "calibration_batches" in self.model_fields_set and self.density is None:
            raise ValueError("calibration_batches is used with density only: set density too (e.g. density: 0.1)")
        return self

    def plan_settings(self) -> dict:
        """The settings `cpt plan` shows: `calibration_batches` only with the `density` it applies to."""
        return self.model_dump(exclude={"method", *(() if self.density else ("calibration_batches",))},
                               exclude_none=True)

    def check_depth(self, decoder_layers: int, stage: str) -> None:
        """Refuse a count that would freeze every decoder layer (nothing above the frozen part would train).
        Called by preflight from the base model's config.json when it is on disk, and by the guard on the model."""
        if self.layers >= decoder_layers:
            raise UserError(f"stage {stage}: guard.layers: {self.layers} would freeze every one of the model's "
                            f"{decoder_layers} decoder layers; give at most {decoder_layers - 1}")


class GPMSpec(StrictModel):
    """Gradient projection memory: each linear layer's update kept orthogonal to the inputs it sees on `text`."""

    method: Literal["gpm"]
    text: str = Field(description="a text file, one passage per line: the inputs whose outputs stay")
    energy: float = Field(0.99, gt=0.0, lt=1.0, description="share of each layer's input energy on the text kept")


GuardSpec = Annotated[OLoRASpec | OSFSpec | KLAnchorSpec | FreezeSpec | GPMSpec, Field(discriminator="method")]
