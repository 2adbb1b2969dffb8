# fails: test_transformer_post_norm test_transformer_pre_norm
# the catalogued bug: embeddings not scaled by sqrt(d_model)
# appends-bug: transformer_no_embedding_scale as Transformer
