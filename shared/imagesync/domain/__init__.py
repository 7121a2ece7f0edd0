"""The pure domain: models, states and transitions, region policy, validation and errors. No I/O here."""
