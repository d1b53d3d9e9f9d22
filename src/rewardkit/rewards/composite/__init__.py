"""Rewards made of other rewards: ensembles and weighted sums (:mod:`.ensemble`), routing by data
source (:mod:`.route`), rule + model hybrids (:mod:`.hybrid`) and confidence-weighted rewards
(:mod:`.confidence`, card F7). The ensemble and hybrid arithmetic lives once, as pure functions,
in :mod:`rewardkit.combine` (the kNN confidence's in :mod:`.confidence`); each composite returns
its members' or parts' scores in :class:`~rewardkit.types.ScoreResult` and answers ``can()`` for
the inherited capabilities (``results.INHERITED_CAPABILITIES``: MODEL_BACKED, BATCH_RELATIVE,
IMAGES) from them."""
