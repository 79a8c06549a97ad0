"""The HTTP API (FastAPI): signed webhook intake, customer status links, health.

``create_app(ApiSettings(...))`` builds the app; ``careflow api`` runs it with uvicorn.
"""
