"""The REST API at ``/api/v1/``: app factory, middlewares, and one module per endpoint group."""
