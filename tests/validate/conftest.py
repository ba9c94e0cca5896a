"""Fixtures for the validate tests: a realistic document and trajectory that pass every check."""

from __future__ import annotations

import pytest

DOCUMENT = (
    "A matrix is invertible when its determinant is nonzero. The determinant of a two by two matrix with "
    "rows (a, b) and (c, d) is ad minus bc, so the matrix with rows (1, 2) and (3, 4) has determinant -2 "
    "and an inverse exists."
)
THINKING = (
    "Let me unpack why a nonzero determinant matters. Geometrically the determinant measures how the map "
    "scales area; if it is zero, the plane collapses onto a line and information is lost, so no map can "
    "undo it. For the example I compute one times four minus two times three, which gives minus two. "
    "Since that is not zero the inverse exists, and I could even write it down with the adjugate formula."
)


@pytest.fixture
def good() -> dict:
    return {
        "id": 1,
        "text": DOCUMENT,
        "thinking": THINKING,
        "finish_reason": "stop",
        "source": "ula",
    }
