"""The Textual face of dltui. Entry point: :func:`dltui.tui.app.run_app`."""
