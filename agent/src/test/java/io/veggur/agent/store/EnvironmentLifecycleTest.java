package io.veggur.agent.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.agent.audit.AuditRecord;
import io.veggur.host.server.Role;
import io.veggur.host.vm.VmState;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EnvironmentLifecycleTest {
    private static final VmRef WEB = new VmRef("alice", "web");

    @TempDir
    Path directory;
    private AgentStore store;
    private Tenant alice;
    private Tenant bob;
    private Vm web;

    @BeforeEach
    void open() throws Exception {
        store = AgentStore.open(directory.resolve("agent.db"));
        alice = store.createTenant("alice").tenant();
        bob = store.createTenant("bob").tenant();
        web = store.setVmState(store.createVm(alice, "web", 256, 1).id(), VmState.Phase.RUNNING);
    }

    /** Web's unfinished environments (CREATING or DELETING), oldest first. */
    private List<Environment> pending() {
        return store.environmentsOf(web.id()).stream().filter(e -> e.state().pending()).toList();
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void createEnvironment_visibleRunningVm_isCreatingAndPending() {
        Environment created = store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.WRITE);

        assertThat(created.state()).isEqualTo(EnvironmentState.CREATING);
        assertThat(created.vm()).isEqualTo(WEB);
        assertThat(created.tenant()).isEqualTo("alice");
        assertThat(created.handle()).isNull();
        assertThat(pending()).containsExactly(created);
        assertThat(store.environment(alice, WEB)).contains(created);
    }

    @Test
    void environment_fullLifecycle_endsRemovedWithEveryStepAudited() {
        Environment env = store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.READ);
        Path sockets = directory.resolve("env-" + env.id());

        assertThat(store.recordEnvironmentHandle(env.id(), "c0ffee", sockets)).isTrue();
        assertThat(store.transitionEnvironment(env.id(), EnvironmentState.CREATING, EnvironmentState.READY, null)).isTrue();
        assertThat(pending()).isEmpty();
        assertThat(store.environmentsOf(web.id())).singleElement()
                .satisfies(e -> assertThat(e.state()).isEqualTo(EnvironmentState.READY))
                .satisfies(e -> assertThat(e.handle()).isEqualTo("c0ffee"))
                .satisfies(e -> assertThat(e.socketDirectory()).isEqualTo(sockets));

        Environment deleting = store.deleteEnvironment(alice, WEB).orElseThrow();
        assertThat(deleting.state()).isEqualTo(EnvironmentState.DELETING);
        assertThat(pending()).extracting(Environment::id).containsExactly(env.id());
        assertThat(store.removeEnvironment(env.id())).isTrue();

        assertThat(store.environment(alice, WEB)).isEmpty();
        assertThat(store.audit().records(0, 100)).extracting(r -> r.entry().action() + " " + r.entry().target())
                .endsWith("env.create env:" + env.id(), "env.handle env:" + env.id(), "env.state env:" + env.id(),
                        "env.state env:" + env.id(), "env.remove env:" + env.id());
        assertThat(store.audit().verify().intact()).isTrue();
    }

    @Test
    void createEnvironment_invisibleVm_isNotFoundExactlyLikeAMissingOne() {
        StoreException hidden = catchStore(() -> store.createEnvironment(bob, WEB, Flavor.CONTAINER, Role.READ));
        StoreException missing = catchStore(() -> store.createEnvironment(bob, new VmRef("alice", "nothing"),
                Flavor.CONTAINER, Role.READ));

        assertThat(hidden.reason()).isEqualTo(StoreException.Reason.NOT_FOUND);
        assertThat(missing.reason()).isEqualTo(StoreException.Reason.NOT_FOUND);
        assertThat(hidden.getMessage()).isEqualTo(missing.getMessage().replace("nothing", "web"));
    }

    @Test
    void createEnvironment_roleAboveTheGrant_isForbidden() {
        store.grant(alice, "web", "bob", Role.READ);

        assertThat(catchStore(() -> store.createEnvironment(bob, WEB, Flavor.CONTAINER, Role.TRACE)).reason())
                .isEqualTo(StoreException.Reason.FORBIDDEN);
        assertThat(store.createEnvironment(bob, WEB, Flavor.CONTAINER, Role.READ).role()).isEqualTo(Role.READ);
    }

    @Test
    void createEnvironment_stoppedVmOrSecondEnvironment_isConflict() {
        store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.READ);
        assertThat(catchStore(() -> store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.READ)).reason())
                .isEqualTo(StoreException.Reason.CONFLICT);

        store.createVm(alice, "db", 256, 1);
        assertThat(catchStore(() -> store.createEnvironment(alice, new VmRef("alice", "db"), Flavor.CONTAINER, Role.READ))
                .reason()).isEqualTo(StoreException.Reason.CONFLICT);
    }

    @Test
    void revoke_granteesLiveEnvironments_moveToDeleting() {
        store.grant(alice, "web", "bob", Role.WRITE);
        Environment bobs = store.createEnvironment(bob, WEB, Flavor.CONTAINER, Role.READ);
        Environment alices = store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.WRITE);
        store.transitionEnvironment(bobs.id(), EnvironmentState.CREATING, EnvironmentState.READY, null);

        store.revoke(alice, "web", "bob");

        assertThat(store.environment(bobs.id()).orElseThrow().state()).isEqualTo(EnvironmentState.DELETING);
        assertThat(store.environment(bobs.id()).orElseThrow().detail()).isEqualTo("the grant was revoked");
        assertThat(store.environment(alices.id()).orElseThrow().state()).isEqualTo(EnvironmentState.CREATING);
    }

    @Test
    void grant_lowered_deletesOnlyEnvironmentsThatNeedMore() {
        store.grant(alice, "web", "bob", Role.WRITE);
        Environment tracing = store.createEnvironment(bob, WEB, Flavor.CONTAINER, Role.TRACE);

        store.grant(alice, "web", "bob", Role.TRACE);
        assertThat(store.environment(tracing.id()).orElseThrow().state()).isEqualTo(EnvironmentState.CREATING);

        store.grant(alice, "web", "bob", Role.READ);
        assertThat(store.environment(tracing.id()).orElseThrow().state()).isEqualTo(EnvironmentState.DELETING);
    }

    @Test
    void setVmState_leavingRunning_movesEnvironmentsToDeleting() {
        Environment env = store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.READ);
        store.transitionEnvironment(env.id(), EnvironmentState.CREATING, EnvironmentState.READY, null);

        store.setVmState(web.id(), VmState.Phase.STOPPING);

        assertThat(pending()).singleElement()
                .satisfies(e -> assertThat(e.state()).isEqualTo(EnvironmentState.DELETING))
                .satisfies(e -> assertThat(e.detail()).isEqualTo("the VM is stopping"));
    }

    @Test
    void setVmState_stopped_alsoSweepsOtherTenantsFailedEnvironmentsSoTheOwnerCanDelete() {
        store.grant(alice, "web", "bob", Role.READ);
        Environment bobs = store.createEnvironment(bob, WEB, Flavor.CONTAINER, Role.READ);
        store.transitionEnvironment(bobs.id(), EnvironmentState.CREATING, EnvironmentState.FAILED, "image missing");

        store.setVmState(web.id(), VmState.Phase.STOPPED);
        assertThat(pending()).extracting(Environment::id).containsExactly(bobs.id());
        store.removeEnvironment(bobs.id());

        assertThat(store.deleteVm(alice, "web")).isTrue();
    }

    @Test
    void setVmState_unchanged_changesAndAuditsNothing() {
        long auditBefore = store.audit().head().orElseThrow().seq();

        Vm same = store.setVmState(web.id(), VmState.Phase.RUNNING);

        assertThat(same).isEqualTo(web);
        assertThat(store.audit().head().orElseThrow().seq()).isEqualTo(auditBefore);
    }

    @Test
    void deleteVm_withEnvironmentRows_isConflictUntilTheyAreRemoved() {
        Environment env = store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.READ);
        store.setVmState(web.id(), VmState.Phase.STOPPED);

        assertThat(catchStore(() -> store.deleteVm(alice, "web")).reason()).isEqualTo(StoreException.Reason.CONFLICT);
        store.removeEnvironment(env.id());
        assertThat(store.deleteVm(alice, "web")).isTrue();
    }

    @Test
    void transitionEnvironment_staleFromState_changesNothing() {
        Environment env = store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.READ);
        store.deleteEnvironment(alice, WEB);
        long auditBefore = store.audit().head().orElseThrow().seq();

        // A builder finishing after its tenant deleted the environment must not bring it back.
        assertThat(store.transitionEnvironment(env.id(), EnvironmentState.CREATING, EnvironmentState.READY, null)).isFalse();

        assertThat(store.environment(env.id()).orElseThrow().state()).isEqualTo(EnvironmentState.DELETING);
        assertThat(store.audit().head().orElseThrow().seq()).isEqualTo(auditBefore);
        assertThat(store.recordEnvironmentHandle(env.id(), "late", null)).isTrue();
    }

    @Test
    void transitionEnvironment_notAllowedByTheLifecycle_isRejected() {
        Environment env = store.createEnvironment(alice, WEB, Flavor.CONTAINER, Role.READ);

        assertThatThrownBy(() -> store.transitionEnvironment(env.id(), EnvironmentState.DELETING, EnvironmentState.READY, null))
                .isInstanceOf(IllegalArgumentException.class);
        assertThat(store.removeEnvironment(env.id())).isFalse();
        assertThat(store.environment(env.id())).isPresent();
    }

    @Test
    void createEnvironment_failingMidTransaction_leavesNoRowAndNoAuditRecord() {
        long auditBefore = store.audit().head().orElseThrow().seq();

        assertThatThrownBy(() -> store.createEnvironment(bob, WEB, Flavor.CONTAINER, Role.READ)).isInstanceOf(StoreException.class);

        assertThat(store.environments(bob)).isEmpty();
        assertThat(store.audit().records(auditBefore, 10)).extracting(AuditRecord::seq).isEmpty();
    }

    private static StoreException catchStore(Runnable call) {
        try {
            call.run();
        } catch (StoreException e) {
            return e;
        }
        throw new AssertionError("expected a StoreException");
    }
}
