# fails: test_base_parameters
# replaces: base_parameters_answer
with torch.device("meta"):
    base = build_transformer(src_vocab_size=37000, tgt_vocab_size=37000)  # forgot tie_embeddings=True
base_parameters = base.num_parameters()
