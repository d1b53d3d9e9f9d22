"""Adapters that plug rewardkit rewards into RL trainers: TRL (:mod:`.trl`), verl (:mod:`.verl`)
and OpenRLHF (:mod:`.openrlhf`). Each module imports its trainer's stack only when called."""
