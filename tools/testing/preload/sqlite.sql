-- SPDX-License-Identifier: GPL-2.0
-- SQLite for the preload's test, on an in-memory database: a table of about 600 bytes a row,
-- filled, indexed and queried. The number of rows is the first statement's (@ROWS@).
create table t(id integer primary key, k text, v text);
with recursive c(x) as (select 1 union all select x + 1 from c where x < @ROWS@)
insert into t select x, printf('%08d', (x * 7919) % @ROWS@), hex(zeroblob(300)) || x from c;
create index tk on t(k);
select count(*), sum(length(v)), min(k), max(k) from t;
select id, k from t where k >= printf('%08d', @ROWS@ / 2) order by k limit 3;
select count(*) from t where k between '00001000' and '00002000';
pragma page_count;
pragma integrity_check;
