"""Moved to service.threaded_server; this re-export goes once the branches in flight are merged."""

from service.threaded_server import free_port, serve_in_thread

__all__ = ["free_port", "serve_in_thread"]
