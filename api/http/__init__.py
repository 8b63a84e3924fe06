"""The HTTP service: the FastAPI app (``app.py``), its routes, auth, problem mapping, limits,
metrics, security headers and the web console."""
