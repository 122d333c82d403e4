-- What each access touched and released: the tables read (a JSON array of names), the rows
-- returned and the cells disclosure control suppressed (counts only, never values).
ALTER TABLE access_events ADD COLUMN tables_read TEXT;
ALTER TABLE access_events ADD COLUMN rows_returned BIGINT;
ALTER TABLE access_events ADD COLUMN cells_suppressed BIGINT;
