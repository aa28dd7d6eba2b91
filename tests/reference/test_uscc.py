"""Unified social credit codes: GB 32100-2015 check character."""

from __future__ import annotations

import pytest

from service.reference import uscc


@pytest.mark.parametrize("code", ["91350100M000100Y43", "12100000400000624D", "91110108551385082Q"])
def test_published_codes_pass(code):
    assert uscc.problem(code) is None


@pytest.mark.parametrize(
    ("code", "why"),
    [("51110000500019361N", "check_digit"), ("9135010OM000100Y43", "alphabet"), ("91350100M000100Y4", "length")],
)
def test_bad_codes_say_why(code, why):
    assert uscc.problem(code) == why


def test_make_builds_a_valid_code():
    assert uscc.problem(uscc.make("52420502MJ0001001")) is None
