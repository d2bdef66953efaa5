"""leadready.training: examples, labels, fitting, evaluation and the registry."""

SEARCH_SECONDS = 15.0
"""The LightGBM hyperparameter search's default budget (seconds), for `train`, `retrain` and
`TrainConfig`: on the 20,000-lead sample it finds the parameters 45 s finds (docs/training.md)."""
