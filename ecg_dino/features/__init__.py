"""Frozen-backbone features: backbone loading, record and beat embeddings, the embedding cache, dataset folders."""
