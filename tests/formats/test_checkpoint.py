"""The checkpoint layout that crosses train -> eval, named once (formats/checkpoint.py)."""

from __future__ import annotations

import pytest

from tpt.core.errors import InputError
from tpt.formats.checkpoint import STATE_FILE, checkpoint_name, read_state, tokens_in_name


def test_a_checkpoint_name_says_the_tokens_seen():
    assert checkpoint_name(4096) == "tokens-000000004096"
    assert tokens_in_name(checkpoint_name(4096)) == 4096
    assert tokens_in_name(".tokens-000000004096.tmp-7") is None  # a checkpoint being written
    assert tokens_in_name("tokens-4096") is None


def test_the_state_file_is_read_or_named(tmp_path):
    assert read_state(tmp_path) is None  # not a tpt checkpoint
    (tmp_path / STATE_FILE).write_text('{"tokens_seen": 8, "bos_id": null}')
    assert read_state(tmp_path) == {"tokens_seen": 8, "bos_id": None}
    (tmp_path / STATE_FILE).write_text("{oops")
    with pytest.raises(InputError, match=rf"{STATE_FILE} is not valid JSON"):
        read_state(tmp_path)
