alter table widgets add column name text not null;
insert into runs values (3);
