package io.veggur.agent.store;

import io.veggur.agent.audit.AuditEntry;
import io.veggur.agent.audit.AuditLog;
import io.veggur.host.server.Role;
import io.veggur.host.vm.VmState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.flywaydb.core.Flyway;
import org.jdbi.v3.core.Handle;
import org.jdbi.v3.core.Jdbi;
import org.jdbi.v3.core.statement.Query;
import org.jdbi.v3.core.statement.StatementContext;
import org.sqlite.SQLiteConfig;
import org.sqlite.SQLiteDataSource;

/**
 * The agent's state in one SQLite file: tenants and their hashed tokens, VMs, grants, introspection environments and
 * the {@link AuditLog}. Opening migrates the schema ({@code db/migration}).
 *
 * <p>Invariants:
 * <ul>
 * <li>Every state change is one transaction, and its audit record is appended inside it: a change commits with its
 *     record or not at all, so a kill -9 loses neither. Write transactions begin IMMEDIATE, which serializes writers on
 *     SQLite's write lock (busy timeout 10 s); WAL with synchronous=FULL makes a commit durable when it returns.</li>
 * <li>A tenant reaches another tenant's VM only through a {@link VmRef} resolved in its visibility (owner or grantee).
 *     For a VM it cannot see, every lookup answers exactly as for one that does not exist (empty, or NOT_FOUND).</li>
 * <li>Mutations of a VM and of its grants resolve the VM's name among the caller's own VMs, so only the owner can
 *     reach them.</li>
 * <li>An environment that is not DELETING has a RUNNING VM that its tenant sees with at least the environment's
 *     role. Whatever breaks that (a revoked or lowered grant, the VM leaving RUNNING) moves the environment to DELETING
 *     in the same transaction; the agent then tears it down and removes it. So stopping a VM always lets its owner
 *     delete it once teardown is done, whatever state other tenants' environments were in.</li>
 * <li>Work in progress is a state, never only a thread: the CREATING and DELETING rows of {@link #environmentsOf}
 *     are what a restarted agent must finish or roll back.</li>
 * </ul>
 *
 * <p>Changes the agent makes on its own (state reported by a supervisor, teardown) are audited as actor
 * {@value #AGENT}; changes a principal asks for are audited under that principal. Denied requests are not state
 * changes: the API records them with {@link AuditLog#append(AuditEntry)}.
 */
public final class AgentStore implements AutoCloseable {
    /** The audit actor for changes the agent makes by itself. */
    public static final String AGENT = "agent";

    private static final String VISIBLE_VMS = """
            SELECT v.id, o.name AS owner, v.name, v.state, v.memory_mib, v.vcpus, v.created, v.updated,
                   CASE WHEN :all THEN 'operator' WHEN v.owner_id = :me THEN 'owner' ELSE 'grantee' END AS relation,
                   CASE WHEN :all OR v.owner_id = :me THEN 'write' ELSE g.role END AS role
            FROM vms v
            JOIN tenants o ON o.id = v.owner_id
            LEFT JOIN grants g ON g.vm_id = v.id AND g.grantee_id = :me
            WHERE (:all OR v.owner_id = :me OR g.grantee_id IS NOT NULL)
            """;
    private static final String VMS = """
            SELECT v.id, o.name AS owner, v.name, v.state, v.memory_mib, v.vcpus, v.created, v.updated
            FROM vms v JOIN tenants o ON o.id = v.owner_id
            """;
    private static final String ENVIRONMENTS = """
            SELECT e.id, e.vm_id, o.name AS vm_owner, v.name AS vm_name, e.tenant_id, t.name AS tenant, e.flavor,
                   e.role, e.state, e.handle, e.socket_dir, e.options, e.detail, e.created, e.updated
            FROM environments e
            JOIN vms v ON v.id = e.vm_id
            JOIN tenants o ON o.id = v.owner_id
            JOIN tenants t ON t.id = e.tenant_id
            """;

    private final ConnectionPool connections;
    private final Jdbi jdbi;
    private final AuditLog audit;

    private AgentStore(ConnectionPool connections) {
        this.connections = connections;
        this.jdbi = Jdbi.create(connections);
        this.audit = new AuditLog(jdbi);
    }

    /**
     * Opens {@code file}, creating it (mode 0600; SQLite gives its WAL files the same mode) if absent, and migrates
     * the schema. The parent directory must exist.
     */
    public static AgentStore open(Path file) throws IOException {
        if (!Files.exists(file)) {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        }
        SQLiteConfig config = new SQLiteConfig();
        config.setJournalMode(SQLiteConfig.JournalMode.WAL);
        config.setSynchronous(SQLiteConfig.SynchronousMode.FULL);
        config.enforceForeignKeys(true);
        config.setBusyTimeout(10_000);
        config.setTransactionMode(SQLiteConfig.TransactionMode.IMMEDIATE);
        SQLiteDataSource dataSource = new SQLiteDataSource(config);
        dataSource.setUrl("jdbc:sqlite:" + file.toAbsolutePath());
        Flyway.configure().dataSource(dataSource).locations("classpath:db/migration").load().migrate();
        return new AgentStore(new ConnectionPool(dataSource));
    }

    public AuditLog audit() {
        return audit;
    }

    /** Closes the kept connections; the store refuses further use. Committed state is on disk either way. */
    @Override
    public void close() {
        try {
            connections.close();
        } catch (SQLException e) {
            throw new IllegalStateException("closing the agent store: " + e.getMessage(), e);
        }
    }

    // ---- tenants and tokens

    /** Creates a tenant; the returned token is its only copy. CONFLICT if the name is taken. Audited as the operator. */
    public CreatedTenant createTenant(String name) {
        String checked = Names.tenant(name);
        String token = Tokens.newToken();
        return jdbi.inTransaction(h -> {
            if (tenant(h, checked).isPresent()) {
                throw StoreException.conflict("tenant '" + checked + "' exists");
            }
            Instant now = now();
            long id = h.createQuery("INSERT INTO tenants (name, token_hash, created) VALUES (:name, :hash, :now) RETURNING id")
                    .bind("name", checked)
                    .bind("hash", Tokens.hash(token))
                    .bind("now", now.toEpochMilli())
                    .mapTo(Long.class)
                    .one();
            record(h, Operator.INSTANCE.auditName(), "tenant.create", "tenant:" + checked, null);
            return new CreatedTenant(new Tenant(id, checked, now), token);
        });
    }

    public Optional<Tenant> tenant(String name) {
        String checked = Names.tenant(name);
        return jdbi.withHandle(h -> tenant(h, checked));
    }

    public List<Tenant> tenants() {
        return jdbi.withHandle(h -> h.createQuery("SELECT id, name, created FROM tenants ORDER BY name")
                .map(AgentStore::tenantRow)
                .list());
    }

    /** Creates or replaces the operator token and returns it; the store keeps only its hash. */
    public String issueOperatorToken() {
        String token = Tokens.newToken();
        jdbi.useTransaction(h -> {
            h.createUpdate("INSERT INTO operator_token (id, token_hash, created) VALUES (1, :hash, :now) "
                            + "ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, created = excluded.created")
                    .bind("hash", Tokens.hash(token))
                    .bind("now", now().toEpochMilli())
                    .execute();
            record(h, AGENT, "operator.token.issue", "operator", null);
        });
        return token;
    }

    public boolean hasOperatorToken() {
        return jdbi.withHandle(h -> h.createQuery("SELECT count(*) FROM operator_token").mapTo(Integer.class).one() > 0);
    }

    /** The principal a bearer token belongs to, or empty for any other string. */
    public Optional<Principal> authenticate(String token) {
        if (token == null || token.isEmpty() || token.length() > Tokens.MAX_LENGTH) {
            return Optional.empty();
        }
        byte[] hash = Tokens.hash(token);
        return jdbi.withHandle(h -> {
            boolean operator = h.createQuery("SELECT token_hash FROM operator_token WHERE id = 1")
                    .mapTo(byte[].class)
                    .findOne()
                    .filter(stored -> Tokens.matches(stored, hash))
                    .isPresent();
            if (operator) {
                return Optional.of(Operator.INSTANCE);
            }
            record Candidate(Tenant tenant, byte[] tokenHash) {}
            return h.createQuery("SELECT id, name, created, token_hash FROM tenants WHERE token_hash = :hash")
                    .bind("hash", hash)
                    .map((rs, ctx) -> new Candidate(tenantRow(rs, ctx), rs.getBytes("token_hash")))
                    .findFirst()
                    .filter(candidate -> Tokens.matches(candidate.tokenHash(), hash))
                    .map(Candidate::tenant);
        });
    }

    // ---- VMs

    /** Creates one of {@code owner}'s VMs, STOPPED. CONFLICT if the owner already has a VM of that name. */
    public Vm createVm(Tenant owner, String name, int memoryMib, int vcpus) {
        String checked = Names.vm(name);
        if (memoryMib < Vm.MIN_MEMORY_MIB || memoryMib > Vm.MAX_MEMORY_MIB) {
            throw new IllegalArgumentException("memory must be " + Vm.MIN_MEMORY_MIB + ".." + Vm.MAX_MEMORY_MIB + " MiB");
        }
        if (vcpus < 1 || vcpus > Vm.MAX_VCPUS) {
            throw new IllegalArgumentException("vcpus must be 1.." + Vm.MAX_VCPUS);
        }
        return jdbi.inTransaction(h -> {
            if (ownVm(h, owner, checked).isPresent()) {
                throw StoreException.conflict("you already have a VM '" + checked + "'");
            }
            long now = now().toEpochMilli();
            h.createUpdate("INSERT INTO vms (owner_id, name, state, memory_mib, vcpus, created, updated) "
                            + "VALUES (:owner, :name, :state, :memory, :vcpus, :now, :now)")
                    .bind("owner", owner.id())
                    .bind("name", checked)
                    .bind("memory", memoryMib)
                    .bind("vcpus", vcpus)
                    .bind("state", Names.text(VmState.Phase.STOPPED))
                    .bind("now", now)
                    .execute();
            Vm vm = ownVm(h, owner, checked).orElseThrow();
            record(h, owner.auditName(), "vm.create", target(vm), "memory=" + memoryMib + "M vcpus=" + vcpus);
            return vm;
        });
    }

    /** One of {@code owner}'s own VMs: the lookup behind every owner-only operation. */
    public Optional<Vm> ownVm(Tenant owner, String name) {
        String checked = Names.vm(name);
        return jdbi.withHandle(h -> ownVm(h, owner, checked));
    }

    /** The VM {@code ref} if {@code who} may see it, with its relation and effective role; empty otherwise. */
    public Optional<VisibleVm> visibleVm(Principal who, VmRef ref) {
        return jdbi.withHandle(h -> visibleVm(h, who, ref));
    }

    /** Every VM {@code who} may see (all of them for the operator), by owner and name. */
    public List<VisibleVm> visibleVms(Principal who) {
        return jdbi.withHandle(h -> visibility(h, who, " ORDER BY o.name, v.name", null).map(AgentStore::visibleVmRow).list());
    }

    /** Every VM on the host, by id: what the agent reconciles with the supervisors. */
    public List<Vm> allVms() {
        return jdbi.withHandle(h -> h.createQuery(VMS + " ORDER BY v.id").map(AgentStore::vmRow).list());
    }

    public Optional<Vm> vm(long id) {
        return jdbi.withHandle(h -> vm(h, id));
    }

    /**
     * Records what the VM's supervisor reports (nothing happens, and nothing is audited, if the state is unchanged).
     * Leaving RUNNING moves the VM's environments to DELETING. NOT_FOUND if there is no VM with that id.
     */
    public Vm setVmState(long vmId, VmState.Phase state) {
        return jdbi.inTransaction(h -> {
            Vm before = vm(h, vmId).orElseThrow(() -> StoreException.notFound("no VM with id " + vmId));
            if (before.state() == state) {
                return before;
            }
            h.createUpdate("UPDATE vms SET state = :state, updated = :now WHERE id = :id")
                    .bind("state", Names.text(state))
                    .bind("now", now().toEpochMilli())
                    .bind("id", vmId)
                    .execute();
            record(h, AGENT, "vm.state", target(before), Names.text(before.state()) + " -> " + Names.text(state));
            if (state != VmState.Phase.RUNNING) {
                for (Environment environment : environmentsNotDeleting(h, "e.vm_id = :vm", vmId, null)) {
                    markDeleting(h, environment, AGENT, "the VM is " + Names.text(state));
                }
            }
            return vm(h, vmId).orElseThrow();
        });
    }

    /**
     * Deletes one of {@code owner}'s VMs with its grants. False if the owner has no such VM; CONFLICT while it is not
     * stopped or failed, or still has environments (they must be torn down and removed first).
     */
    public boolean deleteVm(Tenant owner, String name) {
        String checked = Names.vm(name);
        return jdbi.inTransaction(h -> {
            Optional<Vm> found = ownVm(h, owner, checked);
            if (found.isEmpty()) {
                return false;
            }
            Vm vm = found.get();
            if (vm.state() != VmState.Phase.STOPPED && vm.state() != VmState.Phase.FAILED) {
                throw StoreException.conflict("VM '" + checked + "' is " + Names.text(vm.state()) + "; stop it first");
            }
            int environments = h.createQuery("SELECT count(*) FROM environments WHERE vm_id = :vm")
                    .bind("vm", vm.id()).mapTo(Integer.class).one();
            if (environments > 0) {
                throw StoreException.conflict("VM '" + checked + "' still has " + environments + " environment(s)");
            }
            List<String> grantees = grants(h, vm).stream().map(Grant::grantee).toList();
            h.createUpdate("DELETE FROM vms WHERE id = :id").bind("id", vm.id()).execute();
            record(h, owner.auditName(), "vm.delete", target(vm), grantees.isEmpty() ? null : "grants removed: " + grantees);
            return true;
        });
    }

    // ---- grants

    /**
     * Lets {@code grantee} introspect {@code owner}'s VM {@code vmName} with {@code role}, replacing an earlier grant.
     * Lowering the role moves the grantee's environments that need more to DELETING. NOT_FOUND for an unknown VM or
     * tenant.
     */
    public Grant grant(Tenant owner, String vmName, String grantee, Role role) {
        String vmChecked = Names.vm(vmName);
        String granteeChecked = Names.tenant(grantee);
        return jdbi.inTransaction(h -> {
            Vm vm = ownVm(h, owner, vmChecked).orElseThrow(() -> noVm(vmChecked));
            Tenant to = tenant(h, granteeChecked).orElseThrow(() -> StoreException.notFound("no tenant '" + granteeChecked + "'"));
            if (to.id() == owner.id()) {
                throw new IllegalArgumentException("the owner of a VM has every role on it");
            }
            Optional<Role> previous = h.createQuery("SELECT role FROM grants WHERE vm_id = :vm AND grantee_id = :grantee")
                    .bind("vm", vm.id())
                    .bind("grantee", to.id())
                    .map((rs, ctx) -> Names.parse(Role.class, rs.getString("role")))
                    .findOne();
            h.createUpdate("INSERT INTO grants (vm_id, grantee_id, role, created) VALUES (:vm, :grantee, :role, :now) "
                            + "ON CONFLICT (vm_id, grantee_id) DO UPDATE SET role = excluded.role")
                    .bind("vm", vm.id())
                    .bind("grantee", to.id())
                    .bind("role", Names.text(role))
                    .bind("now", now().toEpochMilli())
                    .execute();
            record(h, owner.auditName(), "grant.set", target(vm), "grantee=" + to.name() + " role=" + Names.text(role)
                    + previous.map(p -> " (was " + Names.text(p) + ")").orElse(""));
            for (Environment environment : environmentsNotDeleting(h, "e.vm_id = :vm AND e.tenant_id = :tenant", vm.id(), to.id())) {
                if (environment.role().compareTo(role) > 0) {
                    markDeleting(h, environment, owner.auditName(), "the grant was lowered to " + Names.text(role));
                }
            }
            return grants(h, vm).stream().filter(g -> g.grantee().equals(to.name())).findFirst().orElseThrow();
        });
    }

    /**
     * Takes {@code grantee}'s access to {@code owner}'s VM away and moves the grantee's environment on it to DELETING.
     * False if there was no such grant; NOT_FOUND if the owner has no such VM.
     */
    public boolean revoke(Tenant owner, String vmName, String grantee) {
        String vmChecked = Names.vm(vmName);
        String granteeChecked = Names.tenant(grantee);
        return jdbi.inTransaction(h -> {
            Vm vm = ownVm(h, owner, vmChecked).orElseThrow(() -> noVm(vmChecked));
            Optional<Tenant> from = tenant(h, granteeChecked);
            if (from.isEmpty()) {
                return false;
            }
            int deleted = h.createUpdate("DELETE FROM grants WHERE vm_id = :vm AND grantee_id = :grantee")
                    .bind("vm", vm.id())
                    .bind("grantee", from.get().id())
                    .execute();
            if (deleted == 0) {
                return false;
            }
            record(h, owner.auditName(), "grant.revoke", target(vm), "grantee=" + granteeChecked);
            for (Environment environment : environmentsNotDeleting(h, "e.vm_id = :vm AND e.tenant_id = :tenant", vm.id(), from.get().id())) {
                markDeleting(h, environment, owner.auditName(), "the grant was revoked");
            }
            return true;
        });
    }

    /** The grants on one of {@code owner}'s VMs. NOT_FOUND if the owner has no such VM. */
    public List<Grant> grants(Tenant owner, String vmName) {
        String checked = Names.vm(vmName);
        return jdbi.withHandle(h -> grants(h, ownVm(h, owner, checked).orElseThrow(() -> noVm(checked))));
    }

    // ---- environments, as tenants see them

    /**
     * Records a new environment of {@code tenant} for {@code ref} in CREATING; the agent then builds it. NOT_FOUND if
     * the tenant cannot see the VM, FORBIDDEN if it asks for more than its role, CONFLICT if the VM is not running or
     * the tenant already has an environment for it.
     */
    public Environment createEnvironment(Tenant tenant, VmRef ref, Flavor flavor, Role role) {
        return jdbi.inTransaction(h -> {
            VisibleVm visible = visibleVm(h, tenant, ref).orElseThrow(() -> noVm(ref.toString()));
            if (!visible.allows(role)) {
                throw StoreException.forbidden("your role on VM '" + ref + "' is " + Names.text(visible.role())
                        + ", not " + Names.text(role));
            }
            if (visible.vm().state() != VmState.Phase.RUNNING) {
                throw StoreException.conflict("VM '" + ref + "' is " + Names.text(visible.vm().state()) + ", not running");
            }
            Optional<Environment> existing = environment(h, tenant, ref);
            if (existing.isPresent()) {
                throw StoreException.conflict("you already have an environment for VM '" + ref + "' ("
                        + Names.text(existing.get().state()) + ")");
            }
            long now = now().toEpochMilli();
            long id = h.createQuery("INSERT INTO environments (vm_id, tenant_id, flavor, role, state, created, updated) "
                            + "VALUES (:vm, :tenant, :flavor, :role, :state, :now, :now) RETURNING id")
                    .bind("vm", visible.vm().id())
                    .bind("tenant", tenant.id())
                    .bind("flavor", Names.text(flavor))
                    .bind("role", Names.text(role))
                    .bind("state", Names.text(EnvironmentState.CREATING))
                    .bind("now", now)
                    .mapTo(Long.class)
                    .one();
            record(h, tenant.auditName(), "env.create", "env:" + id,
                    "vm=" + ref + " flavor=" + Names.text(flavor) + " role=" + Names.text(role));
            return environment(h, id).orElseThrow();
        });
    }

    /** {@code tenant}'s environment for {@code ref}, whatever its state. */
    public Optional<Environment> environment(Tenant tenant, VmRef ref) {
        return jdbi.withHandle(h -> environment(h, tenant, ref));
    }

    public List<Environment> environments(Tenant tenant) {
        return jdbi.withHandle(h -> h.createQuery(ENVIRONMENTS + " WHERE e.tenant_id = :tenant ORDER BY e.id")
                .bind("tenant", tenant.id())
                .map(AgentStore::environmentRow)
                .list());
    }

    /**
     * Moves {@code tenant}'s environment for {@code ref} to DELETING (unless it already is) and returns it; the agent
     * then tears it down. Empty if the tenant has none.
     */
    public Optional<Environment> deleteEnvironment(Tenant tenant, VmRef ref) {
        return jdbi.inTransaction(h -> {
            Optional<Environment> found = environment(h, tenant, ref);
            if (found.isEmpty() || found.get().state() == EnvironmentState.DELETING) {
                return found;
            }
            markDeleting(h, found.get(), tenant.auditName(), "deleted by its tenant");
            return environment(h, found.get().id());
        });
    }

    // ---- environments, as the agent drives them

    public Optional<Environment> environment(long id) {
        return jdbi.withHandle(h -> environment(h, id));
    }

    /**
     * Every environment of one VM, oldest first, whatever its state: what the agent reconciles for that VM (READY ones
     * are re-adopted; CREATING and DELETING ones are work a restarted agent must roll back or finish).
     */
    public List<Environment> environmentsOf(long vmId) {
        return jdbi.withHandle(h -> h.createQuery(ENVIRONMENTS + " WHERE e.vm_id = :vm ORDER BY e.id")
                .bind("vm", vmId)
                .map(AgentStore::environmentRow)
                .list());
    }

    /** The ids of all environments, in any state: containers labelled with any other id are strays. */
    public Set<Long> environmentIds() {
        return jdbi.withHandle(h -> h.createQuery("SELECT id FROM environments").mapTo(Long.class).set());
    }

    /**
     * Records the environment's resources as soon as they exist, so that teardown finds them after a crash. Allowed
     * while CREATING or DELETING (a tenant may delete an environment that is still being built). False if the
     * environment is gone or in another state: the caller then owns what it created and must remove it itself.
     * Naming resources after the environment id (e.g. container {@code veggur-AGENT-env-ID}) makes them findable even
     * before they are recorded.
     */
    public boolean recordEnvironmentHandle(long id, String handle, Path socketDirectory) {
        return jdbi.inTransaction(h -> {
            int updated = h.createUpdate("UPDATE environments SET handle = :handle, socket_dir = :dir, updated = :now "
                            + "WHERE id = :id AND state IN ('creating', 'deleting')")
                    .bind("handle", handle)
                    .bind("dir", socketDirectory == null ? null : socketDirectory.toString())
                    .bind("now", now().toEpochMilli())
                    .bind("id", id)
                    .execute();
            if (updated > 0) {
                record(h, AGENT, "env.handle", "env:" + id, "handle=" + handle + " socket_dir=" + socketDirectory);
            }
            return updated > 0;
        });
    }

    /**
     * Records the flavor's options (JSON) of an environment being built, for rebuilding it after a restart. False
     * if the environment is gone or no longer CREATING.
     */
    public boolean recordEnvironmentOptions(long id, String options) {
        return jdbi.inTransaction(h -> {
            int updated = h.createUpdate("UPDATE environments SET options = :options, updated = :now "
                            + "WHERE id = :id AND state = 'creating'")
                    .bind("options", options)
                    .bind("now", now().toEpochMilli())
                    .bind("id", id)
                    .execute();
            if (updated > 0) {
                record(h, AGENT, "env.options", "env:" + id, options);
            }
            return updated > 0;
        });
    }

    /**
     * Moves an environment from {@code from} to {@code to} if it is still in {@code from} (compare-and-set, so a
     * builder finishing late cannot resurrect an environment its tenant deleted meanwhile). {@code detail} (may be
     * null) says why, for FAILED and DELETING. Only transitions {@link EnvironmentState#canBecome} allows.
     */
    public boolean transitionEnvironment(long id, EnvironmentState from, EnvironmentState to, String detail) {
        if (!from.canBecome(to)) {
            throw new IllegalArgumentException("an environment cannot go from " + Names.text(from) + " to " + Names.text(to));
        }
        return jdbi.inTransaction(h -> {
            int updated = h.createUpdate("UPDATE environments SET state = :to, detail = :detail, updated = :now "
                            + "WHERE id = :id AND state = :from")
                    .bind("to", Names.text(to))
                    .bind("detail", detail)
                    .bind("now", now().toEpochMilli())
                    .bind("id", id)
                    .bind("from", Names.text(from))
                    .execute();
            if (updated > 0) {
                record(h, AGENT, "env.state", "env:" + id,
                        Names.text(from) + " -> " + Names.text(to) + (detail == null ? "" : ": " + detail));
            }
            return updated > 0;
        });
    }

    /** Removes a DELETING environment once its resources are gone. False if it is absent or not DELETING. */
    public boolean removeEnvironment(long id) {
        return jdbi.inTransaction(h -> {
            int deleted = h.createUpdate("DELETE FROM environments WHERE id = :id AND state = 'deleting'")
                    .bind("id", id)
                    .execute();
            if (deleted > 0) {
                record(h, AGENT, "env.remove", "env:" + id, null);
            }
            return deleted > 0;
        });
    }

    // ---- refusals collected from the VMs' sockets

    /** The last refusal collected from run {@code runId} of the VM's supervisor; 0 for a run not seen before. */
    public long refusalCursor(long vmId, String runId) {
        return jdbi.withHandle(h -> h.createQuery("SELECT seq FROM refusal_cursors WHERE vm_id = :vm AND run_id = :run")
                .bind("vm", vmId).bind("run", runId).mapTo(Long.class).findOne().orElse(0L));
    }

    /** Appends refusals collected from a VM's sockets and moves its cursor to {@code lastSeq}, atomically. */
    public void recordRefusals(long vmId, String runId, long lastSeq, List<AuditEntry> refusals) {
        jdbi.useTransaction(h -> {
            refusals.forEach(entry -> audit.append(h, entry));
            h.createUpdate("INSERT INTO refusal_cursors (vm_id, run_id, seq) VALUES (:vm, :run, :seq) "
                            + "ON CONFLICT (vm_id) DO UPDATE SET run_id = excluded.run_id, seq = excluded.seq")
                    .bind("vm", vmId).bind("run", runId).bind("seq", lastSeq).execute();
        });
    }

    // ---- queries inside a transaction

    private void record(Handle h, String actor, String action, String target, String detail) {
        audit.append(h, AuditEntry.allowed(actor, action, target, detail));
    }

    private void markDeleting(Handle h, Environment environment, String actor, String why) {
        h.createUpdate("UPDATE environments SET state = 'deleting', detail = :why, updated = :now WHERE id = :id")
                .bind("why", why)
                .bind("now", now().toEpochMilli())
                .bind("id", environment.id())
                .execute();
        record(h, actor, "env.state", "env:" + environment.id(),
                Names.text(environment.state()) + " -> deleting: " + why);
    }

    private static Optional<Tenant> tenant(Handle h, String name) {
        return h.createQuery("SELECT id, name, created FROM tenants WHERE name = :name")
                .bind("name", name)
                .map(AgentStore::tenantRow)
                .findOne();
    }

    private static Optional<Vm> vm(Handle h, long id) {
        return h.createQuery(VMS + " WHERE v.id = :id").bind("id", id).map(AgentStore::vmRow).findOne();
    }

    private static Optional<Vm> ownVm(Handle h, Tenant owner, String name) {
        return h.createQuery(VMS + " WHERE v.owner_id = :owner AND v.name = :name")
                .bind("owner", owner.id())
                .bind("name", name)
                .map(AgentStore::vmRow)
                .findOne();
    }

    private static Optional<VisibleVm> visibleVm(Handle h, Principal who, VmRef ref) {
        return visibility(h, who, " AND o.name = :owner_name AND v.name = :vm_name", ref)
                .map(AgentStore::visibleVmRow)
                .findOne();
    }

    private static Query visibility(Handle h, Principal who, String tail, VmRef ref) {
        var query = h.createQuery(VISIBLE_VMS + tail)
                .bind("all", who instanceof Operator)
                .bind("me", who instanceof Tenant tenant ? tenant.id() : -1);
        if (ref != null) {
            query.bind("owner_name", ref.owner()).bind("vm_name", ref.name());
        }
        return query;
    }

    private static List<Grant> grants(Handle h, Vm vm) {
        return h.createQuery("SELECT t.name AS grantee, g.role, g.created FROM grants g "
                        + "JOIN tenants t ON t.id = g.grantee_id WHERE g.vm_id = :vm ORDER BY t.name")
                .bind("vm", vm.id())
                .map((rs, ctx) -> new Grant(vm.ref(), rs.getString("grantee"), Names.parse(Role.class, rs.getString("role")),
                        Instant.ofEpochMilli(rs.getLong("created"))))
                .list();
    }

    private static Optional<Environment> environment(Handle h, long id) {
        return h.createQuery(ENVIRONMENTS + " WHERE e.id = :id").bind("id", id).map(AgentStore::environmentRow).findOne();
    }

    private static Optional<Environment> environment(Handle h, Tenant tenant, VmRef ref) {
        return h.createQuery(ENVIRONMENTS + " WHERE e.tenant_id = :tenant AND o.name = :owner AND v.name = :vm")
                .bind("tenant", tenant.id())
                .bind("owner", ref.owner())
                .bind("vm", ref.name())
                .map(AgentStore::environmentRow)
                .findOne();
    }

    /** Environments not yet DELETING that match {@code condition} (binding {@code :vm} and maybe {@code :tenant}). */
    private static List<Environment> environmentsNotDeleting(Handle h, String condition, long vmId, Long tenantId) {
        var query = h.createQuery(ENVIRONMENTS + " WHERE e.state <> 'deleting' AND " + condition + " ORDER BY e.id")
                .bind("vm", vmId);
        if (tenantId != null) {
            query.bind("tenant", tenantId.longValue());
        }
        return query.map(AgentStore::environmentRow).list();
    }

    // ---- rows

    private static Tenant tenantRow(ResultSet rs, StatementContext ctx) throws SQLException {
        return new Tenant(rs.getLong("id"), rs.getString("name"), Instant.ofEpochMilli(rs.getLong("created")));
    }

    private static Vm vmRow(ResultSet rs, StatementContext ctx) throws SQLException {
        return new Vm(rs.getLong("id"), rs.getString("owner"), rs.getString("name"),
                Names.parse(VmState.Phase.class, rs.getString("state")), rs.getInt("memory_mib"), rs.getInt("vcpus"),
                Instant.ofEpochMilli(rs.getLong("created")), Instant.ofEpochMilli(rs.getLong("updated")));
    }

    private static VisibleVm visibleVmRow(ResultSet rs, StatementContext ctx) throws SQLException {
        return new VisibleVm(vmRow(rs, ctx), Names.parse(VisibleVm.Relation.class, rs.getString("relation")),
                Names.parse(Role.class, rs.getString("role")));
    }

    private static Environment environmentRow(ResultSet rs, StatementContext ctx) throws SQLException {
        String socketDirectory = rs.getString("socket_dir");
        return new Environment(rs.getLong("id"), rs.getLong("vm_id"),
                new VmRef(rs.getString("vm_owner"), rs.getString("vm_name")),
                rs.getLong("tenant_id"), rs.getString("tenant"),
                Names.parse(Flavor.class, rs.getString("flavor")), Names.parse(Role.class, rs.getString("role")),
                Names.parse(EnvironmentState.class, rs.getString("state")), rs.getString("handle"),
                socketDirectory == null ? null : Path.of(socketDirectory), rs.getString("options"), rs.getString("detail"),
                Instant.ofEpochMilli(rs.getLong("created")), Instant.ofEpochMilli(rs.getLong("updated")));
    }

    private static String target(Vm vm) {
        return "vm:" + vm.ref();
    }

    private static StoreException noVm(String name) {
        return StoreException.notFound("no VM '" + name + "'");
    }

    private static Instant now() {
        return Instant.now().truncatedTo(ChronoUnit.MILLIS);
    }
}
