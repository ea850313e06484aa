"""Embedding a split and scoring it with the ASEN retrieval protocol."""
