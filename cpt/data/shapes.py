"""The row shapes a consumer accepts: a "shape" is a set of fields a row must have, and a consumer
accepts one of several (an SFT stage takes prompt/completion, messages or text rows).

    from cpt.data.shapes import SFT_SHAPES, shapes_text
    shapes_text(SFT_SHAPES)   # 'prompt/completion or messages or text', for messages
"""

from __future__ import annotations

SFT_SHAPES = (("prompt", "completion"), ("messages",), ("text",))
TEXT_SHAPES = (("text",),)
EVAL_SHAPES = (("prompt", "answer"),)
PREFERENCE_SHAPES = (("prompt", "chosen", "rejected"), ("chosen", "rejected"))
PROMPT_SHAPES = (("prompt", "answer"), ("prompt",))
# Fields that hold text, or (conversational rows, as TRL takes them) a list of chat messages.
TEXT_OR_CHAT_FIELDS = ("prompt", "completion", "chosen", "rejected")


def shapes_text(shapes) -> str:
    return " or ".join("/".join(shape) for shape in shapes)


def shape_of_columns(columns: list[str], shapes) -> tuple[str, ...] | None:
    """The first shape whose fields are all among `columns`, or None."""
    return next((shape for shape in shapes if all(f in columns for f in shape)), None)
