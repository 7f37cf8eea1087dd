-- The first statement succeeds and the second fails: both must be rolled back.
create table half (id int);
insert into missing_table values (1);
