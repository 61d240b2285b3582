"""Registry logic. Services know nothing of HTTP: they raise `app.errors` exceptions."""
