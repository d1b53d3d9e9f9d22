"""Process reward models: step splitting, step-tag conventions and the ``prm:`` reward
(``docs/methods/B4-orm-vs-prm.md``). Importing this package imports no torch."""
