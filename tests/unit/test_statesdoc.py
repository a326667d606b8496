from pathlib import Path

from common import statesdoc


def test_docs_state_diagram_is_drawn_from_the_table():
    doc = Path(__file__).resolve().parents[2] / "docs" / "states.md"
    assert doc.read_text() == statesdoc.render(), "run: python -m common.statesdoc > docs/states.md"
