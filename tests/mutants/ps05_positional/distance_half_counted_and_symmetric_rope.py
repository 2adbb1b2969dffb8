# fails: test_pe_squared_distance test_positions_unchanged
# the distance with one feature per pair (d_model / 2 - sum cos), and the belief that a RoPE score,
# like PE(m) . PE(n), does not change when the two positions are swapped
# replaces: distance_answer
def pe_squared_distance(offset, d_model):
    return d_model / 2 - sum(math.cos(offset * 10000 ** (-2 * i / d_model)) for i in range(d_model // 2))
# replaces: unchanged_answer
unchanged = {"rope_swap_positions": True, "rope_shift_base_100": True, "rope_queries_only": False,
             "rope_norm": True, "sinusoidal_wider_table": False, "learned_shift": False}
