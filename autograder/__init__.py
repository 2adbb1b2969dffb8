"""Attention and Transformers, from scratch: reference implementation, checks and grading CLI."""
