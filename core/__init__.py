"""Pure domain layer: models, bus, clock, bars, order book, indicators. No I/O here."""
