"""copy_request's HTTP API: routes.py (the resolver, the routes and their checks; `handle` answers an SCF HTTP
event), models.py (request models and the one schema of every response, which the CLI's --json prints too),
errors.py (errors -> HTTP status and body, in one place), openapi.py (the document served at GET /openapi.json).

Nothing is imported here: the CLI reads models.py without loading the resolver.
"""
