"""The three functions' handlers. Each reads as a script: adapt the context, parse the trigger, one use case."""
