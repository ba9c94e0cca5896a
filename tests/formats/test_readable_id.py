"""formats.text.readable_id: the id of a line that is no valid record, whenever it can be read."""

from __future__ import annotations

import pytest

from tpt.formats.text import readable_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"id": "surr", "text": "a \\ud800 b"}', "surr"),  # a lone surrogate in the text
        (b'{"id": "lat", "text": "caf\xe9"}', "lat"),  # a bad byte in the text
        ('{"id": "cut", "text": "the line ends in the mid', "cut"),  # malformed: truncated
        ('{"text": "ok", "id": 7, "oops"}', 7),  # malformed after the id
        ('  {"n": {"a": [1, 2]}, "id": ["x", 1], "text": }', ["x", 1]),  # any JSON value, as augment takes
        ('{"text": "the id comes after the break", , "id": "late"}', None),
        ('{"id": "\\udc00x", "text": "y"}', None),  # the id itself cannot be written
        (b'{"id": "b\xe9d", "text": "z"}', None),  # nor with a bad byte in it
        ('{"id": "a\\ud800", ', None),
        ("[1, 2]", None),
        ('"id"', None),
        ("", None),
        ('{"text": "no id"}', None),
        ('{"id": null, "text": "x"}', None),
    ],
)
def test_the_id_is_read_whenever_it_can_be(raw, expected):
    assert readable_id(raw) == expected


def test_another_id_field_and_parsed_rows():
    assert readable_id('{"doc": "d1", "text": "\\ud800"}', "doc") == "d1"
    assert readable_id('{"doc": "d1", "text": "\\ud800"}') is None
    assert readable_id({"id": 3, "text": "a parquet row"}) == 3
    assert readable_id({"id": "\ud800"}) is None
