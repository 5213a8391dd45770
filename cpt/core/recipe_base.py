"""Building blocks shared by every part of the recipe schema.

`StrictModel` rejects unknown keys (the loader turns that into "did you mean ..."), and
`DataSource` is the one way a recipe points at data: a local file, a `datasets` name, or
the embedded toy suite.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_folder_name(name: str) -> str:
    """A run, stage or eval task name, which becomes a folder inside the run directory: no '/', no '..'."""
    if not FOLDER_NAME.fullmatch(name):
        raise ValueError("cannot name a folder inside the run directory: use letters, digits, '_', '.' and '-', "
                         "starting with a letter or digit (no '/', no '..')")
    return name


FolderName = Annotated[str, AfterValidator(check_folder_name)]


class StrictModel(BaseModel):
    """A recipe section: unknown keys are errors, values are validated, nothing is coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class DataSource(StrictModel):
    """Where a stage's examples come from. Exactly one of `path`, `hf` or `toy`."""

    path: str | None = Field(None, description="local .jsonl, .json, .parquet or .txt file, or many Parquet "
                             "files as one dataset: a directory (its *.parquet) or a glob pattern (corpus/*.parquet)")
    hf: str | None = Field(None, description="a `datasets` name (loaded with load_dataset; streamed up to "
                           "max_examples when that is set)")
    toy: str | None = Field(None, description="an embedded toy task or domain name")
    subset: str | None = Field(None, description="the `datasets` config name, with `hf`")
    split: str = "train"
    max_examples: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _exactly_one_origin(self) -> DataSource:
        given = [k for k in ("path", "hf", "toy") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of path, hf or toy (got {given or 'none'})")
        return self

    def describe(self) -> str:
        """A short human label, e.g. `toy:addition[train]` or `data/x.jsonl`."""
        if self.toy is not None:
            return f"toy:{self.toy}[{self.split}]"
        if self.hf is not None:
            subset = f"/{self.subset}" if self.subset else ""
            return f"hf:{self.hf}{subset}[{self.split}]"
        return str(self.path)


class PeftSpec(StrictModel):
    """LoRA through PEFT. After the stage the adapter is merged so the output is a plain model."""

    method: Literal["lora"] = "lora"
    r: int = Field(16, gt=0)
    alpha: int = Field(32, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


def check_unique(names: list[str], what: str) -> None:
    """Raise ValueError naming every name that appears more than once (`what`: "stage names", ...)."""
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(repeated)}")
