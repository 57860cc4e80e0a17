"""Inert results: frozen dataclasses with tidy ``to_frame()`` views; no model inside."""
