"""Data layer: schema, featurizer, loading and validation, synthetic default, splits, scaling,
batches in memory and streamed from Parquet."""
