"""all-MiniLM-L6-v2 sentence embeddings: tokenizer, encoder, numpy reference."""
