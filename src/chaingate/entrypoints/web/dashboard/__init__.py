"""The merchant dashboard: server-rendered pages under /dashboard, signed in with a session."""

from chaingate.entrypoints.web.dashboard.app import mount_dashboard

__all__ = ["mount_dashboard"]
