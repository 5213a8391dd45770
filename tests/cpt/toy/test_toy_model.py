"""The toy model and tokenizer load with the Auto classes, and the chat template marks assistant tokens."""

from transformers import AutoModelForCausalLM, AutoTokenizer


def test_model_loads_with_expected_size(toy_dir):
    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 500_000 <= sum(p.numel() for p in model.parameters()) <= 5_000_000
    assert model.config.eos_token_id == AutoTokenizer.from_pretrained(toy_dir / "model").eos_token_id


def test_tokenizer_splits_digits_and_round_trips(toy_dir):
    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    assert tokenizer.pad_token and tokenizer.eos_token and tokenizer.bos_token
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    text = "add 37+45 = 82"
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert [t for t in tokenizer.convert_ids_to_tokens(ids) if t.isdigit()] == list("374582")


def test_prompt_tokens_prefix_prompt_plus_completion(toy_dir):
    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    for prompt, completion in [
        ("add 37+45 =", " 82"),
        ("capital of Varnia =", " Oskel"),
        ("reverse a b c =", " c b a"),
    ]:
        prompt_ids = tokenizer(prompt)["input_ids"]
        assert tokenizer(prompt + completion)["input_ids"][: len(prompt_ids)] == prompt_ids


def test_chat_template_marks_assistant_tokens(toy_dir):
    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    messages = [{"role": "user", "content": "add 1+2 ="}, {"role": "assistant", "content": "3"}]
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    masked = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tokenizer.decode(masked) == "3<|end|>"
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>add 1+2 =<|end|><|assistant|>"
