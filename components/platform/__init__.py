"""The run platform every layer may use: config loading and validation, ``--help``, output
folders and locks, manifests, storage URIs, MLflow tracking, Ray start-up and Tune helpers.

It imports no domain package (parsing, data, models, training, probes, evaluation), so a
pipeline's plumbing never drags a model or a world in with it; import-linter checks this.
"""
