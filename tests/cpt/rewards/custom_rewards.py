"""Custom rewards named by dotted path in test recipes (`tests.cpt.rewards.custom_rewards:NAME`)."""


def alternating(prompts, completions, **_):
    """1, 0, 1, 0, ... by position: every group of an even size gets both outcomes."""
    return [float(i % 2 == 0) for i in range(len(completions))]


def by_prompt(prompts, completions, **_):
    """1 for prompts starting with 'always', 0 for 'never', by position otherwise."""
    return [1.0 if p.startswith("always") else 0.0 if p.startswith("never") else float(i % 2 == 0)
            for i, p in enumerate(prompts)]


def broken(prompts, completions, **_):
    raise KeyError("answer_column")


def too_few(prompts, completions, **_):
    return [1.0]


def chat_by_prompt(prompts, completions, completion_ids=None, trainer_state=None, **_):
    """`by_prompt` for chat prompts (the last message's text), which first checks that it is called as GRPO
    training calls it: completions as one assistant message, token ids per completion, a trainer state."""
    if completion_ids is None or len(completion_ids) != len(completions):
        raise ValueError(f"completion_ids: expected one list per completion, got {completion_ids!r}")
    if not all(isinstance(i, int) for ids in completion_ids for i in ids):
        raise ValueError("completion_ids: expected token ids (ints)")
    if not all(isinstance(c, list) and c[-1]["role"] == "assistant" for c in completions):
        raise ValueError(f"completions: expected assistant messages, got {completions[0]!r}")
    if trainer_state is None:
        raise ValueError("trainer_state: missing")
    return by_prompt([p[-1]["content"] for p in prompts], completions)


RECORDED: list[list[str]] = []


def recording_by_position(prompts, completions, **_):
    """`by_prompt`'s positional rule for every prompt, keeping each call's completions in RECORDED."""
    RECORDED.append(list(completions))
    return [float(i % 2 == 0) for i in range(len(prompts))]
