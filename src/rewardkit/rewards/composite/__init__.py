"""Rewards made of other rewards: ensembles and weighted sums (:mod:`.ensemble`), routing by data
source (:mod:`.route`) and rule + model hybrids (:mod:`.hybrid`). Their arithmetic lives once,
as pure functions, in :mod:`rewardkit.combine`; each composite returns its members' or parts'
scores in :class:`~rewardkit.types.ScoreResult` and answers ``can()`` for the inherited
capabilities (``results.INHERITED_CAPABILITIES``: MODEL_BACKED, BATCH_RELATIVE, IMAGES) from them."""
