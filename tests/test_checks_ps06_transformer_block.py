"""ps06_transformer_block through the sandboxed worker: the solution passes every check, the release
none, and each mutant (hand-written ones in tests/mutants/ps06_transformer_block/ and the layer bugs
of autograder.bugs) fails exactly the checks it must."""
from __future__ import annotations

import pytest

from _checks_mutants import bug_mutant, file_mutants, grade_all, points_of_source
from autograder import checks

ASSIGNMENT = "ps06_transformer_block"
DECODER = ["test_decoder_post_norm", "test_decoder_pre_norm"]
ENCODER = ["test_encoder_post_norm", "test_encoder_pre_norm"]
MUTANTS = {
    **file_mutants(ASSIGNMENT),
    "bug_encoder_layer_no_residual": bug_mutant("encoder_layer_no_residual", "EncoderLayer", ENCODER),
    "bug_decoder_layer_no_residual": bug_mutant("decoder_layer_no_residual", "DecoderLayer", DECODER),
    "bug_decoder_layer_cross_attends_to_itself": bug_mutant("decoder_layer_cross_attends_to_itself", "DecoderLayer", DECODER),
}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    return grade_all(ASSIGNMENT, MUTANTS, tmp_path_factory.mktemp(ASSIGNMENT))


def test_points_table_matches_the_source_notebook():
    assert points_of_source(ASSIGNMENT) == checks.load(ASSIGNMENT).POINTS


def test_solution_passes_every_check(graded):
    result = dict(graded["solved"])
    assert not result.pop("__cell_errors__")
    assert all(message is None for message in result.values()), result


def test_release_fails_every_check_with_clear_messages(graded):
    result = dict(graded["release"])
    result.pop("__cell_errors__")
    assert all(message is not None for message in result.values()), result
    assert "NotImplementedError" in result["test_decoder_post_norm"]
    assert "does not define `decoder_layer_parameters`" in result["test_decoder_layer_parameters"]


def test_every_check_is_failed_by_some_mutant():
    caught = {test for mutant in MUTANTS.values() for test in mutant["fails"]}
    assert caught == set(checks.load(ASSIGNMENT).POINTS)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_fails_its_checks(graded, mutant):
    result = dict(graded[mutant])
    assert not result.pop("__cell_errors__")
    assert all(message for message in result.values()), result
