# replaces: pe_answers
# fails: test_pe_diagnosis
same_frequency_snippet = "c"
zero_at_start_snippet = "a"
