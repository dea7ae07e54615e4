CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT
);

CREATE VIEW active AS SELECT * FROM users;

CREATE FUNCTION add(a integer, b integer) RETURNS integer AS $$
    SELECT a + b;
$$ LANGUAGE SQL;

SELECT name FROM users WHERE id = 1;
