"""Citations in round brackets: "Vaswani et al. (2017)" and "(Vaswani et al., 2017)".

sphinxcontrib-bibtex's ``author_year`` style puts the year in square brackets. This registers a
style named ``author_year_round``, the same with round brackets, which ``_config.yml`` selects with
``bibtex_reference_style``. (The plugin hook and the dataclass fields are sphinxcontrib-bibtex's
documented way of changing the brackets.)
"""
from __future__ import annotations

import dataclasses

import sphinxcontrib.bibtex.plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle


def _round() -> BracketStyle:
    return BracketStyle(left="(", right=")")


@dataclasses.dataclass
class RoundAuthorYear(AuthorYearReferenceStyle):
    bracket_parenthetical: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_textual: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_author: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_label: BracketStyle = dataclasses.field(default_factory=_round)
    bracket_year: BracketStyle = dataclasses.field(default_factory=_round)


sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round",
                                            RoundAuthorYear)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
