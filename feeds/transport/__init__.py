"""Live transports: websocket and REST loops that drive the sans-I/O codecs (see feeds/live.py)."""
