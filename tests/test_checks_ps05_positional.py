"""ps05_positional through the real grader (`_checks_mutants.AssignmentSuite`): the solution scores
full marks, the release zero, each mutant in tests/mutants/ps05_positional/ (two of them the seed
tutorials' tables) fails exactly the checks it names, other correct ways to write the answers (a
mutant that names no check) score full marks, and the feedback on the common mistakes names the
contract they break."""
from __future__ import annotations

import math

import pytest

from _checks_mutants import AssignmentSuite, NamesContracts


class TestPs05(AssignmentSuite, NamesContracts):
    ASSIGNMENT = "ps05_positional"
    exact = True

    feedback = {  # mutant -> {check: words its message must contain}
        "wrong_formula_and_halves_pairing": {"test_rotary_values": "pairs are (2i, 2i+1), not (i, i + d/2)"},
        "half_split_copied_from_interleaved": {"test_rotary_half": "pairs are (i, i + d/2), not (2i, 2i+1)"},
        "half_split_with_repeated_angles": {"test_rotary_half": "repeated pair by pair"},
        "float64_and_rotation_backwards": {"test_rotary_values": "-m * omega_i"},
        "integer_division_and_positions_ignored": {"test_rotary_values": "positions[l]"},
        "seed_sin_plus_cos_summed": {"test_pe_values": "never summed"},
        "seed_table_indexed_by_length": {"test_pe_shape": "(max_len, max_len + 1)"},
        "sin_only_and_rotary_without_sine": {"test_pe_values": "sine and the cosine of the same angle"},
        "distance_half_counted_and_symmetric_rope": {"test_pe_squared_distance": "count both"},
    }

    @pytest.mark.slow
    def test_derive_and_predict_feedback_keeps_the_answer_hidden(self, graded):
        messages = graded["distance_half_counted_and_symmetric_rope"].messages
        want = 8 - 2 * sum(math.cos(10000 ** (-2 * i / 8)) for i in range(4))  # the first case: offset 1, d_model 8
        assert f"{want:g}" not in messages["test_pe_squared_distance"]
        assert "True" not in messages["test_positions_unchanged"] and "False" not in messages["test_positions_unchanged"]
        wavelength = graded["exponent_i_over_d_no_odd_check_and_wavelength"].messages["test_slowest_wavelength"]
        assert f"{2 * math.pi * 1000:g}" not in wavelength
