"""The special token ids, defined once for the whole course.

Every vocabulary (characters or BPE, ``attnlab.train.tokenizers``) starts with these four, every batch
is padded with ``PAD_ID`` (the models' ``TransformerConfig.pad_id``), and decoding starts from ``BOS_ID``
and stops at ``EOS_ID``. The toy tasks of the book (reversing strings of symbols) use the same ids.
"""
from __future__ import annotations

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")  # their text in a vocabulary, in the order of their ids
