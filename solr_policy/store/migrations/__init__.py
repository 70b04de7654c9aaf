"""Schema migrations of the stores that keep them as files (PostgreSQL: ``postgres/NNNN_name.sql``)."""
