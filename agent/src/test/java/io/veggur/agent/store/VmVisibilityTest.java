package io.veggur.agent.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.host.server.Role;
import io.veggur.host.vm.VmState;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tenant isolation: what each tenant can see and change of the others' VMs. */
class VmVisibilityTest {
    @TempDir
    Path directory;
    private AgentStore store;
    private Tenant alice;
    private Tenant bob;

    @BeforeEach
    void open() throws Exception {
        store = AgentStore.open(directory.resolve("agent.db"));
        alice = store.createTenant("alice").tenant();
        bob = store.createTenant("bob").tenant();
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void visibleVm_otherTenantsVm_isIndistinguishableFromNone() {
        store.createVm(alice, "web", 256, 1);

        assertThat(store.visibleVm(bob, new VmRef("alice", "web"))).isEmpty();
        assertThat(store.visibleVm(bob, new VmRef("alice", "nothing"))).isEmpty();
        assertThat(store.visibleVms(bob)).isEmpty();
        assertThat(store.ownVm(bob, "web")).isEmpty();
    }

    @Test
    void visibleVm_owner_seesItWithEveryRole() {
        store.createVm(alice, "web", 256, 1);

        VisibleVm web = store.visibleVm(alice, VmRef.parse("web", alice)).orElseThrow();

        assertThat(web.relation()).isEqualTo(VisibleVm.Relation.OWNER);
        assertThat(web.role()).isEqualTo(Role.WRITE);
        assertThat(web.vm().ref()).isEqualTo(new VmRef("alice", "web"));
        assertThat(web.vm().state()).isEqualTo(VmState.Phase.STOPPED);
    }

    @Test
    void createVm_sameNameAsAnotherTenantsVm_succeeds() {
        Vm alicesWeb = store.createVm(alice, "web", 256, 1);

        Vm bobsWeb = store.createVm(bob, "web", 256, 1);

        assertThat(bobsWeb.id()).isNotEqualTo(alicesWeb.id());
        assertThat(bobsWeb.hostName()).isNotEqualTo(alicesWeb.hostName());
        assertThat(store.visibleVm(bob, VmRef.parse("web", bob)).orElseThrow().vm()).isEqualTo(bobsWeb);
        assertThatThrownBy(() -> store.createVm(bob, "web", 256, 1))
                .isInstanceOfSatisfying(StoreException.class, e -> assertThat(e.reason()).isEqualTo(StoreException.Reason.CONFLICT));
    }

    @Test
    void grant_grantee_seesTheVmWithTheGrantedRole() {
        store.createVm(alice, "web", 256, 1);

        store.grant(alice, "web", "bob", Role.TRACE);

        VisibleVm seen = store.visibleVm(bob, VmRef.parse("alice/web", bob)).orElseThrow();
        assertThat(seen.relation()).isEqualTo(VisibleVm.Relation.GRANTEE);
        assertThat(seen.role()).isEqualTo(Role.TRACE);
        assertThat(seen.allows(Role.READ)).isTrue();
        assertThat(seen.allows(Role.WRITE)).isFalse();
        assertThat(store.visibleVms(bob)).extracting(v -> v.vm().ref().toString()).containsExactly("alice/web");
        assertThat(store.grants(alice, "web")).singleElement()
                .satisfies(g -> assertThat(g.grantee()).isEqualTo("bob"))
                .satisfies(g -> assertThat(g.role()).isEqualTo(Role.TRACE));
    }

    @Test
    void grant_again_replacesTheRole() {
        store.createVm(alice, "web", 256, 1);
        store.grant(alice, "web", "bob", Role.WRITE);

        store.grant(alice, "web", "bob", Role.READ);

        assertThat(store.visibleVm(bob, new VmRef("alice", "web")).orElseThrow().role()).isEqualTo(Role.READ);
        assertThat(store.grants(alice, "web")).hasSize(1);
    }

    @Test
    void revoke_grantee_losesVisibility() {
        store.createVm(alice, "web", 256, 1);
        store.grant(alice, "web", "bob", Role.READ);

        assertThat(store.revoke(alice, "web", "bob")).isTrue();

        assertThat(store.visibleVm(bob, new VmRef("alice", "web"))).isEmpty();
        assertThat(store.revoke(alice, "web", "bob")).isFalse();
        assertThat(store.revoke(alice, "web", "nobody")).isFalse();
    }

    @Test
    void grantAndRevoke_byNonOwner_isNotFound() {
        store.createVm(alice, "web", 256, 1);
        store.grant(alice, "web", "bob", Role.WRITE);
        Tenant carol = store.createTenant("carol").tenant();

        // bob names VMs in his own namespace: alice's VM is not there, even with a write grant.
        assertThatThrownBy(() -> store.grant(bob, "web", "carol", Role.READ)).isInstanceOfSatisfying(StoreException.class,
                e -> assertThat(e.reason()).isEqualTo(StoreException.Reason.NOT_FOUND));
        assertThatThrownBy(() -> store.revoke(bob, "web", "bob")).isInstanceOfSatisfying(StoreException.class,
                e -> assertThat(e.reason()).isEqualTo(StoreException.Reason.NOT_FOUND));
        assertThat(store.deleteVm(bob, "web")).isFalse();
        assertThat(store.visibleVm(carol, new VmRef("alice", "web"))).isEmpty();
        assertThat(store.visibleVm(bob, new VmRef("alice", "web"))).isPresent();
    }

    @Test
    void grant_toOwnerOrUnknownTenant_isRefused() {
        store.createVm(alice, "web", 256, 1);

        assertThatThrownBy(() -> store.grant(alice, "web", "alice", Role.READ)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> store.grant(alice, "web", "nobody", Role.READ)).isInstanceOfSatisfying(StoreException.class,
                e -> assertThat(e.reason()).isEqualTo(StoreException.Reason.NOT_FOUND));
    }

    @Test
    void deleteVm_withGrants_removesThemAndNeverReusesTheId() {
        Vm old = store.createVm(alice, "web", 256, 1);
        store.grant(alice, "web", "bob", Role.READ);

        assertThat(store.deleteVm(alice, "web")).isTrue();
        Vm recreated = store.createVm(alice, "web", 256, 1);

        assertThat(recreated.id()).isGreaterThan(old.id());
        assertThat(store.grants(alice, "web")).isEmpty();
        assertThat(store.visibleVm(bob, new VmRef("alice", "web"))).isEmpty();
    }

    @Test
    void deleteVm_running_isConflict() {
        Vm web = store.createVm(alice, "web", 256, 1);
        store.setVmState(web.id(), VmState.Phase.RUNNING);

        assertThatThrownBy(() -> store.deleteVm(alice, "web")).isInstanceOfSatisfying(StoreException.class,
                e -> assertThat(e.reason()).isEqualTo(StoreException.Reason.CONFLICT));
    }

    @Test
    void visibleVm_operator_seesEveryVmAndMustNameTheOwner() {
        store.createVm(alice, "web", 256, 1);
        store.createVm(bob, "db", 256, 1);

        assertThat(store.visibleVms(Operator.INSTANCE)).extracting(v -> v.vm().ref().toString())
                .containsExactly("alice/web", "bob/db");
        assertThat(store.visibleVm(Operator.INSTANCE, VmRef.parse("bob/db", Operator.INSTANCE)).orElseThrow().relation())
                .isEqualTo(VisibleVm.Relation.OPERATOR);
        assertThatThrownBy(() -> VmRef.parse("db", Operator.INSTANCE)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void vmRef_pathTraversalAndOddNames_areRejected() {
        for (String text : new String[] {"../web", "alice/../web", "alice/web/x", "/web", "alice/", "alice/.", "Alice/web",
                "alice/we b", "alice/web\n", "%2e%2e"}) {
            assertThatThrownBy(() -> VmRef.parse(text, bob)).as(text).isInstanceOf(IllegalArgumentException.class);
        }
    }
}
