# fails: test_rotary_half
# the variant written as a copy of apply_rotary: it still pairs (2i, 2i+1), not (i, i + d/2)
# replaces: rotary_half
def apply_rotary_half(x, positions, base=10000.0):
    return apply_rotary(x, positions, base)
