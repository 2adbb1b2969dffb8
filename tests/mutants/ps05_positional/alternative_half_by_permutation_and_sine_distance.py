# fails:
# NOT a bug: other correct ways must score full marks: the half-split rotation as the interleaved one on
# permuted features, and the distance summed as 4 sin^2(k omega_i / 2) per pair
# replaces: rotary_half
def apply_rotary_half(x, positions, base=10000.0):
    d = x.size(-1)
    side_by_side = torch.arange(d).view(2, d // 2).T.flatten()  # 0, d/2, 1, d/2 + 1, ...
    back = torch.argsort(side_by_side)
    return apply_rotary(x[..., side_by_side], positions, base)[..., back]
# replaces: distance_answer
def pe_squared_distance(offset, d_model):
    total = 0.0
    for i in range(d_model // 2):
        half_angle = offset * 10000.0 ** (-2 * i / d_model) / 2
        total += 4 * math.sin(half_angle) ** 2  # the chord between two points of the unit circle
    return total
