"""The responder handler's shortcuts: the remembered reqGLN match keys are party_keys' own."""

from __future__ import annotations

import pytest

from service.handlers.verification import _party_keys
from service.partners import party_keys


@pytest.mark.parametrize(
    "identifier",
    [
        "0399999999991",
        " 0399999999991 ",
        "urn:epc:id:sgln:0399999.99999.0",
        "urn:epc:id:pgln:0399999.99999",
        "https://id.gs1.org/414/0399999999991",
        "DUNS 123456789",
        "0399999999992",
    ],
)
def test_remembered_party_keys_equal_party_keys(identifier: str) -> None:
    assert _party_keys(identifier) == frozenset(party_keys(identifier))
    # The second answer comes from the cache and is still the same.
    assert _party_keys(identifier) == frozenset(party_keys(identifier))
