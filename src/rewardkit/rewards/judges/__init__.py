"""One judge core: kinds and templates, verdict readers, and the local text, local VLM and
HTTP backends (docs/judges.md). Submodules are imported lazily; nothing here imports torch."""
