-- SQLite's migration 11: a generation of the static world facts a decision may cache (Users,
-- instructions, ADT files, certificates: store.sql.STATIC_FACT_TABLES), bumped by a trigger in
-- the transaction of any change to them, so every node's cache sees the change at its next read.
-- Row triggers: a statement that changes no row (an upsert of an unchanged User) bumps nothing.

CREATE TABLE world_generation (id INTEGER PRIMARY KEY CHECK (id = 1), generation BIGINT NOT NULL);
INSERT INTO world_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION bump_world_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Its row may have been emptied (a store's tables cleared): it comes back counting.
    INSERT INTO world_generation (id, generation) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
    UPDATE world_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER users_generation AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION bump_world_generation();
CREATE TRIGGER instructions_generation AFTER INSERT OR UPDATE OR DELETE ON instructions
    FOR EACH ROW EXECUTE FUNCTION bump_world_generation();
CREATE TRIGGER adt_files_generation AFTER INSERT OR UPDATE OR DELETE ON adt_files
    FOR EACH ROW EXECUTE FUNCTION bump_world_generation();
CREATE TRIGGER certificates_generation AFTER INSERT OR UPDATE OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION bump_world_generation();
