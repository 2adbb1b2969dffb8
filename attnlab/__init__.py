"""attnlab, the course library: the one hand-written source of all model code in the course.

The book shows it, the solutions are filled from it, the checks compare learners' code with it,
and ``tests/`` prove it equal to PyTorch's built-in modules.
"""
from .attention import AdditiveAttention, SelfAttention, masked_softmax, scaled_dot_product_attention
from .decoding import beam_search, greedy_decode, length_penalty_gnmt, trim_after_eos
from .decoder_only import DecoderOnlyConfig, DecoderOnlyLM, causal_lm_loss
from .efficient import tiled_attention
from .encoder_only import ClassificationHead, EncoderOnlyConfig, EncoderOnlyModel, mlm_loss, mlm_mask
from .modern import RMSNorm, SwiGLU, alibi_slopes
from .multihead import GroupedQueryAttention, KVCache, MultiHeadAttention
from .objectives import inverse_sqrt_lambda, label_smoothed_cross_entropy, make_optimizer, train_step
from .positional import (
    LearnedPositionalEmbedding,
    PositionalEncoding,
    RotaryEmbedding,
    apply_rotary,
    sinusoidal_positional_encoding,
)
from .sampling import sample_next
from .rnn import Seq2SeqRNN, gradient_norm_by_distance
from .tokens import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from .transformer import (
    DecoderLayer,
    EncoderLayer,
    FeedForward,
    Transformer,
    TransformerConfig,
    causal_mask,
    padding_mask,
)

__all__ = [
    "AdditiveAttention", "SelfAttention", "masked_softmax", "scaled_dot_product_attention",
    "beam_search", "greedy_decode", "length_penalty_gnmt", "trim_after_eos",
    "GroupedQueryAttention", "KVCache", "MultiHeadAttention", "tiled_attention",
    "RMSNorm", "SwiGLU", "alibi_slopes",
    "DecoderOnlyConfig", "DecoderOnlyLM", "causal_lm_loss", "sample_next",
    "ClassificationHead", "EncoderOnlyConfig", "EncoderOnlyModel", "mlm_loss", "mlm_mask",
    "inverse_sqrt_lambda", "label_smoothed_cross_entropy", "make_optimizer", "train_step",
    "LearnedPositionalEmbedding", "PositionalEncoding", "RotaryEmbedding", "apply_rotary",
    "sinusoidal_positional_encoding",
    "Seq2SeqRNN", "gradient_norm_by_distance",
    "BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID",
    "DecoderLayer", "EncoderLayer", "FeedForward", "Transformer", "TransformerConfig",
    "causal_mask", "padding_mask",
]
