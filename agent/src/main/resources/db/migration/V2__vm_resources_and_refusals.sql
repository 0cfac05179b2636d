-- What a VM boots with, so the agent can start it again after a stop.
ALTER TABLE vms ADD COLUMN memory_mib INTEGER NOT NULL DEFAULT 256;
ALTER TABLE vms ADD COLUMN vcpus INTEGER NOT NULL DEFAULT 1;

-- How far the agent has collected a VM's socket refusals into the audit log. run_id is the supervisor run
-- (sequence numbers restart with every boot of the VM); the cursor moves in the transaction that appends the records,
-- so a restarted agent neither loses nor repeats one.
CREATE TABLE refusal_cursors (
    vm_id  INTEGER PRIMARY KEY REFERENCES vms (id) ON DELETE CASCADE,
    run_id TEXT    NOT NULL,
    seq    INTEGER NOT NULL
) STRICT;
