"""``rewardkit check-model``: the engine against a model's own forward (see :mod:`.check`)."""
