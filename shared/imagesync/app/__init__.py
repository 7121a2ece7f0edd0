"""Use cases: request copies, sweep, complete. They see ports, never events, HTTP or SDK types."""
