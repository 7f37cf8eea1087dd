create table widgets (id int primary key);
insert into runs values (2);
