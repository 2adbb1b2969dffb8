# fails: test_what_changes
# believes a decoder without positional encodings cannot tell its prefix's order (it can: the causal mask
# gives each position a different view from the second layer on)
# replaces: what_changes_answer
what_changes = {
    "future_target": "unchanged",
    "source_token": "changed",
    "other_row": "unchanged",
    "swap_source": "changed",
    "swap_source_no_positions": "unchanged",
    "swap_target_no_positions": "unchanged",
}
