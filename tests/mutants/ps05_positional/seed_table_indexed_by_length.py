# fails: test_pe_shape test_pe_values test_pe_odd_d_model
# a seed tutorial's code (appendix A): frequencies indexed by the position, a (max_len, max_len + 1)
# table that ignores d_model (so an odd d_model raises nothing either)
# appends-bug: pe_table_indexed_by_length as sinusoidal_positional_encoding
