create table never (id int);
