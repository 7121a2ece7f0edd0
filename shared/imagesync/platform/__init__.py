"""Platform glue: SCF context, deadlines, logging, trigger envelopes, HTTP resolver, wiring."""
