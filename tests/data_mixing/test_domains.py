"""Domains: tokenised once with EOS separators, held-out tail split off; empty or too small domains refused."""

from __future__ import annotations

import pytest
from datasets import Dataset

from cpt.errors import UserError
from data_mixing.domains import build_domains
from tests.data_mixing.fakes import EOS, CharTokenizer


def _texts(count: int, size: int = 30) -> Dataset:
    return Dataset.from_list([{"text": f"doc {i:04d} " + "x" * size} for i in range(count)])


def test_domains_are_tokenised_with_eos_and_split():
    general, code = build_domains({"general": _texts(100), "code": _texts(50)}, CharTokenizer(), 32, 4)
    assert (general.name, code.name) == ("general", "code")
    assert general.held_out.shape == (4, 32) and code.held_out.shape == (4, 32)
    doc = general.doc(0)
    assert doc[-1] == EOS and len(doc) == len("doc 0000 ") + 30 + 1
    # 4 x 32 tokens need 4 documents of 40 tokens: the rest trains
    assert len(general) == 96 and len(code) == 46


def test_held_out_split_does_not_depend_on_anything_but_the_data():
    first = build_domains({"g": _texts(100)}, CharTokenizer(), 32, 4)[0]
    again = build_domains({"g": _texts(100)}, CharTokenizer(), 32, 4)[0]
    assert first.rows.tolist() == again.rows.tolist() and first.held_out.equal(again.held_out)


def test_empty_domain_is_a_user_error_naming_it():
    with pytest.raises(UserError, match="domain 'code': no rows"):
        build_domains({"general": _texts(10), "code": _texts(0)}, CharTokenizer(), 32, 0)


def test_domain_too_small_for_its_held_out_set():
    with pytest.raises(UserError, match="domain 'tiny': too small to hold out 8 sequences of 32 tokens"):
        build_domains({"tiny": _texts(5)}, CharTokenizer(), 32, 8)


def test_no_held_out_keeps_every_row():
    (general,) = build_domains({"general": _texts(10)}, CharTokenizer(), 32, 0)
    assert len(general) == 10 and general.held_out.shape == (0, 32)
