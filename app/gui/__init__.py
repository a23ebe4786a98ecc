"""The PySide6 desktop app: pages, item models, delegates and the workers that keep it responsive."""
