"""The course web app (FastAPI): `create_app(settings)` in `app.py`, `serve()` in `server.py`."""
