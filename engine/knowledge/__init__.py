"""The knowledge base: articles, their lifecycle, search, e-level self-service and the learning loop."""
