"""djreconnect's backend: LiveView-style views on FastAPI, served over WebSocket.

from djreconnect_server import DJReconnect, LiveView, Settings, event_handler
"""

from djreconnect_server.app import DJReconnect
from djreconnect_server.settings import Settings
from djreconnect_server.views import HandlerError, LiveView, event_handler

__all__ = ["DJReconnect", "HandlerError", "LiveView", "Settings", "event_handler"]
