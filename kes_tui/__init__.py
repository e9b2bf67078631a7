"""kes_tui: a live terminal console (Textual) for KES servers. Run ``kes-tui``."""
