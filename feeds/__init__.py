"""Per-venue wire codecs (sans-I/O), transports and replay."""
