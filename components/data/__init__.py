"""Concept spaces, synthetic worlds and their rendering, captions and hard negatives, the record schema, shard IO and real-data ingest."""
