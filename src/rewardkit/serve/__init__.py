"""Serve any reward over HTTP (``rewardkit serve``): see ``docs/serving.md``.

Import :func:`create_app` / :class:`ServeConfig` from :mod:`rewardkit.serve.app`; this package
file stays light (fastapi is imported only by the modules that need it).
"""
