package catalog

import "strings"

// The tables of the service, written once for both dialects: the only
// difference is the type of an auto-numbered key, which each dialect's
// migration fills in for {{id}}. Booleans are integers (0, 1) and times
// sortable UTC text (see formatTime) in both, so every query is the same.
const serviceTables = `
CREATE TABLE site_status (
	site                 TEXT PRIMARY KEY REFERENCES sites (name) ON DELETE CASCADE,
	next_backup_at       TEXT NOT NULL DEFAULT '', -- '' when the schedule is off
	failures             INTEGER NOT NULL DEFAULT 0, -- failed backups in a row
	failing_since        TEXT NOT NULL DEFAULT '',
	alerted              INTEGER NOT NULL DEFAULT 0, -- the failing mail was sent
	last_error           TEXT NOT NULL DEFAULT '',
	last_error_code      TEXT NOT NULL DEFAULT '',
	last_error_at        TEXT NOT NULL DEFAULT '',
	last_success_at      TEXT NOT NULL DEFAULT '',
	last_point           TEXT NOT NULL DEFAULT '',
	last_bytes           INTEGER NOT NULL DEFAULT 0, -- the last backup's size, all files and tables
	last_duration_ms     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX site_status_due ON site_status (next_backup_at);

CREATE TABLE jobs (
	id                   {{id}},
	kind                 TEXT NOT NULL,
	site                 TEXT NOT NULL DEFAULT '',
	trigger              TEXT NOT NULL DEFAULT '',
	state                TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
	exclusive            INTEGER NOT NULL DEFAULT 0, -- 1: one such job per site at a time
	params               TEXT NOT NULL DEFAULT '',
	result               TEXT NOT NULL DEFAULT '',
	error                TEXT NOT NULL DEFAULT '',
	error_code           TEXT NOT NULL DEFAULT '',
	progress             TEXT NOT NULL DEFAULT '',
	attempt              INTEGER NOT NULL DEFAULT 0,
	max_attempts         INTEGER NOT NULL DEFAULT 1,
	cancel_requested     INTEGER NOT NULL DEFAULT 0,
	worker               TEXT NOT NULL DEFAULT '',
	created_by           TEXT NOT NULL DEFAULT '',
	dedupe_key           TEXT, -- a scheduled job's site and day: at most one
	created_at           TEXT NOT NULL,
	run_after            TEXT NOT NULL,
	started_at           TEXT NOT NULL DEFAULT '',
	finished_at          TEXT NOT NULL DEFAULT '',
	heartbeat_at         TEXT NOT NULL DEFAULT ''
);
-- At most one backup, restore or undo runs per site, whatever the workers.
CREATE UNIQUE INDEX jobs_one_running_per_site ON jobs (site) WHERE state = 'running' AND exclusive = 1;
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key);
CREATE INDEX jobs_queue ON jobs (state, run_after);
CREATE INDEX jobs_site ON jobs (site, id);
CREATE INDEX jobs_finished ON jobs (finished_at);

CREATE TABLE users (
	id                   {{id}},
	email                TEXT NOT NULL UNIQUE,
	name                 TEXT NOT NULL DEFAULT '',
	role                 TEXT NOT NULL CHECK (role IN ('owner', 'viewer')),
	password_hash        TEXT NOT NULL, -- argon2id, PHC string format
	created_at           TEXT NOT NULL
);

CREATE TABLE sessions (
	token_hash           TEXT PRIMARY KEY, -- SHA-256 of the cookie's value
	user_id              INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at           TEXT NOT NULL,
	expires_at           TEXT NOT NULL
);

CREATE TABLE tokens (
	id                   {{id}},
	user_id              INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name                 TEXT NOT NULL,
	prefix               TEXT NOT NULL,
	token_hash           TEXT NOT NULL UNIQUE, -- SHA-256 of the token
	created_at           TEXT NOT NULL,
	last_used_at         TEXT NOT NULL DEFAULT '',
	expires_at           TEXT NOT NULL DEFAULT ''
);

CREATE TABLE settings (
	key                  TEXT PRIMARY KEY,
	value                TEXT NOT NULL, -- sealed when the key says so
	updated_at           TEXT NOT NULL
);
`

// ServiceSchema returns the service's tables for a dialect whose
// auto-numbered primary key is written idColumn.
func ServiceSchema(idColumn string) string { return ReplaceID(serviceTables, idColumn) }

// ReplaceID fills a table definition's {{id}} with idColumn.
func ReplaceID(schema, idColumn string) string { return strings.ReplaceAll(schema, "{{id}}", idColumn) }

// SitesTable is the sites table as both dialects create it, with the
// service's columns (SQLite adds those to its first version's table).
const SitesTable = `
CREATE TABLE sites (
	id                   {{id}},
	name                 TEXT NOT NULL UNIQUE,
	connection           TEXT NOT NULL CHECK (connection IN ('local', 'ssh')),
	path                 TEXT NOT NULL,
	ssh_user             TEXT NOT NULL DEFAULT '',
	ssh_host             TEXT NOT NULL DEFAULT '',
	ssh_port             INTEGER NOT NULL DEFAULT 0,
	ssh_identity_file    TEXT NOT NULL DEFAULT '',
	ssh_host_key         TEXT NOT NULL DEFAULT '', -- authorized_keys format
	ssh_host_key_sha256  TEXT NOT NULL DEFAULT '', -- SHA256:… fingerprint
	ssh_password         TEXT NOT NULL DEFAULT '', -- sealed
	ssh_passphrase       TEXT NOT NULL DEFAULT '', -- sealed
	db_host              TEXT NOT NULL DEFAULT '', -- overrides of wp-config.php
	db_name              TEXT NOT NULL DEFAULT '',
	db_user              TEXT NOT NULL DEFAULT '',
	db_password          TEXT NOT NULL DEFAULT '', -- sealed
	db_table_prefix      TEXT NOT NULL DEFAULT '',
	db_last_credentials  TEXT NOT NULL DEFAULT '', -- sealed JSON of the last login that worked
	created_at           TEXT NOT NULL,
	updated_at           TEXT NOT NULL,
	schedule             TEXT NOT NULL DEFAULT '', -- JSON of sitevault.Schedule
	retention            TEXT NOT NULL DEFAULT '', -- JSON of sitevault.Retention, '' for the default
	notify               TEXT NOT NULL DEFAULT ''  -- JSON array of addresses
);`
