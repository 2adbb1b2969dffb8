# fails: test_pe_diagnosis
# replaces: pe_answers
same_frequency_snippet = "c"
zero_at_start_snippet = "a"
