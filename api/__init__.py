"""The read API: FastAPI over the precomputed tables."""
