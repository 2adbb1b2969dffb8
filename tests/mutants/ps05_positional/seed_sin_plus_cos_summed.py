# fails: test_pe_values test_pe_odd_d_model
# a seed tutorial's formula (appendix A): sin(pos / 10000^(2/3)) + cos(pos / 10000^(2/3)), summed, with no
# feature index, so every feature of a row holds the same number (and no check of an odd d_model)
# appends-bug: pe_sin_plus_cos_without_dimension as sinusoidal_positional_encoding
