"""Data layer: schema, featurizer, loading and validation, synthetic default, splits, tf.data."""
