"""Ray Train loops, optimisers and schedules, checkpoints during training, and the feature caches training reads."""
