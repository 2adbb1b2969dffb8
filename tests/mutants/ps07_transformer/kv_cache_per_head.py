# fails: test_kv_cache_bytes
# believes each head caches d_model numbers per token (the heads split d_model, they do not multiply it)
# replaces: kv_cache_bytes
def kv_cache_bytes(num_layers, d_model, batch, length, bytes_per_value):
    num_heads = 8
    return 2 * num_layers * batch * length * num_heads * d_model * bytes_per_value
