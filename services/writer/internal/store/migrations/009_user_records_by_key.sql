-- A user's grants and attributes are keyed "<user key>|…": one range of the
-- primary key finds them (see dependentsOf), so the user_key index, which
-- every insert of a full sync maintained, goes. The range needs byte order
-- whatever the database's collation, hence the key column collates "C"
-- (only the primary key is rebuilt; the table is not rewritten).
ALTER TABLE records ALTER COLUMN key TYPE text COLLATE "C";
DROP INDEX records_user_key;
