package io.veggur.agent.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AuthenticationTest {
    @TempDir
    Path directory;
    private AgentStore store;

    @BeforeEach
    void open() throws Exception {
        store = AgentStore.open(directory.resolve("agent.db"));
    }

    @AfterEach
    void close() {
        store.close();
    }

    @Test
    void authenticate_tenantToken_returnsThatTenant() {
        CreatedTenant alice = store.createTenant("alice");
        CreatedTenant bob = store.createTenant("bob");

        assertThat(store.authenticate(alice.token())).contains(alice.tenant());
        assertThat(store.authenticate(bob.token())).contains(bob.tenant());
    }

    @Test
    void authenticate_wrongOrMalformedToken_isEmpty() {
        String token = store.createTenant("alice").token();
        String altered = token.substring(0, token.length() - 1) + (token.endsWith("A") ? "B" : "A");

        assertThat(store.authenticate(altered)).isEmpty();
        assertThat(store.authenticate("")).isEmpty();
        assertThat(store.authenticate(null)).isEmpty();
        assertThat(store.authenticate("x".repeat(10_000))).isEmpty();
    }

    @Test
    void createTenant_tokens_areHighEntropyAndNeverStored() throws Exception {
        CreatedTenant alice = store.createTenant("alice");
        CreatedTenant bob = store.createTenant("bob");

        assertThat(alice.token()).startsWith("vgr_").hasSize(4 + 43).isNotEqualTo(bob.token());
        assertThat(alice.toString()).doesNotContain(alice.token());
        byte[] database = Files.readAllBytes(directory.resolve("agent.db"));
        byte[] wal = Files.exists(directory.resolve("agent.db-wal")) ? Files.readAllBytes(directory.resolve("agent.db-wal")) : new byte[0];
        String files = new String(database, StandardCharsets.ISO_8859_1) + new String(wal, StandardCharsets.ISO_8859_1);
        assertThat(files).doesNotContain(alice.token().substring(4)).doesNotContain(bob.token().substring(4));
    }

    @Test
    void issueOperatorToken_authenticatesAsOperatorAndReplacesTheOldOne() {
        assertThat(store.hasOperatorToken()).isFalse();
        String first = store.issueOperatorToken();
        assertThat(store.authenticate(first)).contains(Operator.INSTANCE);

        String second = store.issueOperatorToken();

        assertThat(store.hasOperatorToken()).isTrue();
        assertThat(store.authenticate(second)).contains(Operator.INSTANCE);
        assertThat(store.authenticate(first)).isEmpty();
    }

    @Test
    void createTenant_takenName_isConflict() {
        store.createTenant("alice");

        assertThatThrownBy(() -> store.createTenant("alice"))
                .isInstanceOfSatisfying(StoreException.class, e -> assertThat(e.reason()).isEqualTo(StoreException.Reason.CONFLICT));
    }

    @Test
    void createTenant_nameOutsideTheAlphabet_isRejected() {
        for (String name : new String[] {"", "Alice", "-alice", "../etc", "a/b", "a.b", "a".repeat(33), "ali ce"}) {
            assertThatThrownBy(() -> store.createTenant(name)).as(name).isInstanceOf(IllegalArgumentException.class);
        }
        assertThat(store.tenants()).isEmpty();
    }
}
