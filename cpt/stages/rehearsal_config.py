"""Recipe section `rehearsal:` of an sft or cpt stage: self-synthesized rehearsal (SSR, Huang et al. 2024,
"Mitigating Catastrophic Forgetting in Large Language Models with Self-Synthesized Rehearsal").

When the old training data is gone (the usual case for an instruct model), the stage's STARTING model
answers prompts itself (greedy, stopping at EOS), and those rows are mixed into the stage like replay:

    - name: sft_b
      kind: sft
      data: {toy: sorting}
      rehearsal:
        prompts: {stages: [sft_a]}     # the prompts of earlier sft (or cpt) stages' rows, answers not used
        # prompts: {path: prompts.txt} # or a prompt file: one prompt a line (.txt), or rows with `prompt`,
        #                              #   `messages` (the last assistant turn is dropped) or `text`
        # prompts: {seed: "sort 3 1 2 =\\nsort 9 4 7 =\\n", temperature: 0.7}
        #                              # or the paper's way: the model continues the seed text (sampled),
        #                              #   and each continuation's first line becomes a prompt
        rows: 64                       # prompts answered (distinct; a seeded sample when there are more)
        ratio: 0.25                    # share of rehearsal rows in the stage's data, as replay's ratio
        max_new_tokens: 64             # per answer; an answer that has not reached EOS by then is dropped
        batch_size: 32                 # prompts per generate call
        keep_unfinished: false         # true: keep answers cut at max_new_tokens too

The rows are generated once per stage and cached in its folder (stages/NAME/rehearsal.jsonl, with
rehearsal.json saying how many rows came from which source); a resume reuses them, and a generation that
was interrupted continues where it stopped (cpt/stages/rehearsal.py). In a chat stage (rows of
`messages`, or conversational prompt/completion) the prompts go through the chat template, as the
stage's own rows do; otherwise they are used as plain text. A cpt stage gets the rows as text
(prompt + answer) in a domain of their own, held at `ratio` like replay. dpo and grpo stages have no
rehearsal: DPO trains on preference pairs, and GRPO already trains on the model's own samples.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from cpt.core.recipe_base import StrictModel

REHEARSAL_DOMAIN = "rehearsal"  # the domain rehearsal rows form in a cpt stage
# Row shapes a prompt can be read from: a prompt (text or chat), a conversation, or plain text.
PROMPT_ROW_SHAPES = (("prompt",), ("messages",), ("text",))
SEED_ONLY = ("temperature", "max_prompt_tokens")


class RehearsalPrompts(StrictModel):
    """Where the prompts come from: earlier stages' rows and/or a file, or the model's own writing from a seed."""

    stages: list[str] = Field(default_factory=list, description="earlier sft or cpt stages whose rows give prompts")
    path: str | None = Field(None, description="a prompt file: .txt (one a line), .jsonl, .json or .parquet")
    seed: str | None = Field(None, min_length=1, description="text the model continues to write new prompts")
    # 0.7: SmolLM2-135M-Instruct continuing 3 questions wrote mostly questions at 0.7, often noise at 1.0.
    temperature: float = Field(0.7, gt=0.0, le=10.0, description="seed: sampling temperature of the prompts")
    max_prompt_tokens: int = Field(48, gt=0, le=4096, description="seed: longest prompt written, in tokens")

    @model_validator(mode="after")
    def _one_kind_of_source(self) -> RehearsalPrompts:
        given = bool(self.stages) or self.path is not None
        if self.seed is not None and given:
            raise ValueError("give seed (the model writes the prompts) or stages/path (prompts read), not both")
        if self.seed is None and not given:
            raise ValueError("give stages (earlier stage names), path (a prompt file) or seed (text to continue)")
        stray = [key for key in SEED_ONLY if key in self.model_fields_set and self.seed is None]
        if stray:
            raise ValueError(f"{stray[0]} applies to prompts written from a seed; give seed or remove {stray[0]}")
        return self

    def describe(self) -> str:
        """The source in words, as the manifest and rehearsal.json record it."""
        if self.seed is not None:
            return f"seed ({len(self.seed)} characters, temperature {self.temperature:g})"
        parts = [f"stages {', '.join(self.stages)}"] if self.stages else []
        return "; ".join(parts + ([f"path {self.path}"] if self.path else []))


class RehearsalSpec(StrictModel):
    """Rows the stage's starting model answers itself, mixed in at a fixed share (SSR)."""

    prompts: RehearsalPrompts
    rows: int = Field(64, gt=0, le=100_000, description="prompts the starting model answers")
    ratio: float = Field(gt=0.0, lt=1.0, description="share of rehearsal rows (sft) or sequences (cpt)")
    max_new_tokens: int = Field(64, gt=0, le=8192, description="longest answer, in tokens")
    # 32: on SmolLM2-135M with 2 CPU cores, 64 answers took 34 s in batches of 32, 93 s in batches of 16.
    batch_size: int = Field(32, gt=0, le=4096, description="prompts per generate call")
    keep_unfinished: bool = Field(False, description="keep answers that reached max_new_tokens before EOS")
