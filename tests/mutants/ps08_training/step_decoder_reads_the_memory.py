# fails: test_train_step test_training_run
# The seeds' bug (a published tutorial): the decoder is fed the encoder's output instead of the
# shifted target, so the target tokens are only ever labels. With the reverse task's lengths it crashes.
# appends-bug: train_step_decoder_reads_the_memory as train_step
