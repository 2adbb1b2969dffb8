# fails: test_big_parameters
# replaces: big_parameters_answer
with torch.device("meta"):
    big = build_transformer(src_vocab_size=37000, tgt_vocab_size=37000, d_model=1024, num_heads=16, d_ff=4096)
big_parameters = big.num_parameters()  # forgot tie_embeddings=True
