"""The paper's prompt verbatim, the random-focus variant, and user templates."""

import pytest

from tpt.augment.prompts import PAPER_TEMPLATE, load_template
from tpt.core.errors import ConfigError


def test_paper_template_is_verbatim():
    text = load_template("paper").render("DOC")
    assert text == (
        "DOC\n\n## End of the context\n\nSimulate an expert's in-depth thought process as they analyze the "
        "above context, focusing on complex and informative aspects. Skip trivial details. Use Feynman "
        "technique whenever possible to ensure a deep understanding."
    )
    assert load_template("paper").hash == load_template("paper").hash
    assert "{{CONTEXT}}" in PAPER_TEMPLATE


def test_random_focus_marks_a_word_boundary_reproducibly():
    t = load_template("random-focus")
    a = t.render("w1 w2 w3 w4 w5", focus_seed=3)
    assert a == t.render("w1 w2 w3 w4 w5", focus_seed=3)
    head = a.split("\n\n")[0]
    assert " <<<READING HERE>>> " in head and head.replace(" <<<READING HERE>>> ", " ") == "w1 w2 w3 w4 w5"
    assert "An expert is focused at the <<<READING HERE>>> position." in a


def test_user_template_file(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("Explain:\n{{CONTEXT}}\nThink hard.")
    assert load_template(str(f)).render("X") == "Explain:\nX\nThink hard."
    f.write_text("no placeholder")
    with pytest.raises(ConfigError, match="placeholder"):
        load_template(str(f))


def test_random_focus_fills_both_parts_in_one_pass():
    # A document that contains a placeholder is data: the part holding it is not substituted again.
    t = load_template("random-focus")
    doc = "see {{REMAINING CONTEXT}} here and {{RANDOM CONTEXT PREFIX}} there"
    for seed in range(6):
        head = t.render(doc, focus_seed=seed).split("\n\n")[0]
        assert head.replace(" <<<READING HERE>>> ", " ", 1) == doc
    assert load_template("paper").render("a {{CONTEXT}} b").startswith("a {{CONTEXT}} b\n\n")
