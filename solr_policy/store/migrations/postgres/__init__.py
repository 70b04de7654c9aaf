"""PostgreSQL migrations, applied in file order by ``store.postgres`` (a package so the wheel carries them)."""
