"""The cyclic collector is paused only inside, and left as it was found."""

from __future__ import annotations

import gc

import pytest

from service.collector import collector_paused


def test_the_collector_is_paused_only_inside_and_left_as_found() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # paused by someone else: still theirs to resume
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError
    assert gc.isenabled()
