"""Live recording: workflow → task → ML run scopes held in contextvars, their journals and files."""
