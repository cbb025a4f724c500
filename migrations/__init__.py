"""The database schema's migrations (Alembic), shipped inside the installed package so that
`wgan-service migrate` works from any install, editable or not."""
