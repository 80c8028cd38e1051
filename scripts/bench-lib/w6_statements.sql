-- W6's statements on PostgreSQL, for pgbench: what one Companies/Update costs the
-- database when it is the only write of its transaction, without this server in the
-- way (docs/PERFORMANCE.md, the eleventh sitting). Run against a database that
-- dms-settingsd has migrated and that holds companies 1..16 (the W6 rounds of
-- scripts/bench make them):
--
--   pgbench -h HOST -p PORT -U postgres -n -c 5 -j 2 -T 5 -f w6_statements.sql dms_settings
--
-- As the superuser, row-level security does not apply (slightly cheaper than the
-- server's role). Drop the pg_notify and pg_advisory_xact_lock lines to see the
-- ceiling when commits do not wait for one another.
\set c random(1, 16)
BEGIN;
SELECT set_config('dms.company', :c::text, true), set_config('dms.scope', '', true), (SELECT id FROM company WHERE id = :c FOR UPDATE);
SELECT d.area, d.revision, d.body, d.format, d.updated_at FROM company c LEFT JOIN company_document d ON d.company_id = c.id WHERE c.id = :c;
INSERT INTO company_document (company_id, area, revision, body, format, updated_at) VALUES (:c, 'bench.w6', 1, 'x', 1, 'now') ON CONFLICT (company_id, area) DO UPDATE SET revision = company_document.revision + 1, body = excluded.body;
INSERT INTO audit_entry (company_id, company_code, at, action, area, field, revision, detail, login, peer, user_agent, request_id, subject) VALUES (:c, 'W', 'now', 'update', 'bench.w6', '', 1, '', 'bench', 'bench', '', '', '');
SELECT pg_notify('dms_settings_bench', '');
SELECT pg_advisory_xact_lock(77);
INSERT INTO change_feed (company_id, company_code, area, kind, revision, committed_at) VALUES (:c, 'W', 'bench.w6', 'updated', 1, 'now') RETURNING position;
COMMIT;
