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
