"""The HTTP API: a Starlette app with one error handler; hot routes are plain endpoints with no extra layers."""
