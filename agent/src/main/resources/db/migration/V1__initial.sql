-- The agent's state. Times are milliseconds since the epoch (UTC). Enumerations are lower-case text.
-- Internal ids never reach tenants: the API names VMs as owner/name and environments by their VM.
-- Ids are AUTOINCREMENT, hence never reused: a new VM or environment cannot inherit an old one's host directory
-- (vm-ID), container name or leftover rows.

CREATE TABLE tenants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    token_hash BLOB    NOT NULL UNIQUE,   -- SHA-256 of the bearer token; the token itself is never stored
    created    INTEGER NOT NULL
) STRICT;

-- At most one operator token (id is always 1); issuing a new one replaces it.
CREATE TABLE operator_token (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    token_hash BLOB    NOT NULL,
    created    INTEGER NOT NULL
) STRICT;

-- VM names are unique per owner, not per host, so creating a VM never reveals another tenant's VM names.
CREATE TABLE vms (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL REFERENCES tenants (id),
    name     TEXT    NOT NULL,
    state    TEXT    NOT NULL CHECK (state IN ('starting', 'running', 'stopping', 'stopped', 'failed')),
    created  INTEGER NOT NULL,
    updated  INTEGER NOT NULL,
    UNIQUE (owner_id, name)
) STRICT;

CREATE TABLE grants (
    vm_id      INTEGER NOT NULL REFERENCES vms (id) ON DELETE CASCADE,
    grantee_id INTEGER NOT NULL REFERENCES tenants (id),
    role       TEXT    NOT NULL CHECK (role IN ('read', 'trace', 'write')),
    created    INTEGER NOT NULL,
    PRIMARY KEY (vm_id, grantee_id)
) STRICT;

CREATE INDEX grants_by_grantee ON grants (grantee_id);

-- One environment per VM and tenant. Rows outlive their resources only in state 'deleting' (teardown pending)
-- or 'failed'; a VM with environment rows cannot be deleted.
CREATE TABLE environments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    vm_id      INTEGER NOT NULL REFERENCES vms (id),
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    flavor     TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('read', 'trace', 'write')),
    state      TEXT    NOT NULL CHECK (state IN ('creating', 'ready', 'deleting', 'failed')),
    handle     TEXT,              -- e.g. the container id, once it exists
    socket_dir TEXT,              -- the directory holding this environment's role-bound socket
    detail     TEXT,              -- why it is failed or being deleted
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    UNIQUE (vm_id, tenant_id)
) STRICT;

CREATE INDEX environments_by_state ON environments (state);

-- The hash chain; see io.veggur.agent.audit.ChainHash for the hash.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    time      INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    decision  TEXT    NOT NULL CHECK (decision IN ('allowed', 'denied')),
    detail    TEXT,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
) STRICT;

-- The last seq and hash, updated with every append: cutting the tail of the chain must also rewrite this row.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
) STRICT;

-- Append-only against the agent's own mistakes (not against root, who can drop these).
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
