"""Platform glue: SCF context, logging, auth, trigger envelopes, the HTTP resolver (the composition root is
imagesync.wiring; deadlines and failpoints are the leaf imagesync.runtime)."""
