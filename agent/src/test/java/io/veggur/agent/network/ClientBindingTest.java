package io.veggur.agent.network;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import java.nio.file.Path;
import java.security.cert.CertificateException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.bouncycastle.asn1.x509.GeneralName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ClientBindingTest {
    private static final String TENANT = "veggur:tenant:bob";
    private static final String VM = "veggur:vm:alice/web";
    private static final String ROLE = "veggur:role:read";
    private static final String CLIENT = "veggur:client:10.0.0.2/32";

    @Test
    void from_certificateIssuedForBinding_readsTheSameBinding(@TempDir Path directory) throws Exception {
        ClientBinding binding = new ClientBinding("bob", new VmRef("alice", "web"), Role.TRACE,
                List.of(Cidr.parse("10.0.0.2/32"), Cidr.parse("fd00::/64")));
        CertificateAuthority ca = CertificateAuthority.open(directory);
        Instant now = Instant.now();

        var certificate = ca.issueClient(binding, now, now.plus(Duration.ofDays(1))).certificate();

        assertThat(ClientBinding.from(certificate)).isEqualTo(binding);
        assertThat(binding.uris()).containsExactly(TENANT, VM, "veggur:role:trace", CLIENT,
                "veggur:client:fd00:0:0:0:0:0:0:0/64");
    }

    @Test
    void from_otherNamesBesideBinding_areIgnored() throws Exception {
        var certificate = CertificateBuilder.withNames(new GeneralName(GeneralName.dNSName, "client.example"),
                uri("https://example.org/x"), uri(TENANT), uri(VM), uri(ROLE), uri(CLIENT),
                uri("veggur:client:fd00::/8"));

        ClientBinding binding = ClientBinding.from(certificate);

        assertThat(binding.tenant()).isEqualTo("bob");
        assertThat(binding.vm()).isEqualTo(new VmRef("alice", "web"));
        assertThat(binding.role()).isEqualTo(Role.READ);
        assertThat(binding.clients()).containsExactly(Cidr.parse("10.0.0.2/32"), Cidr.parse("fd00::/8"));
    }

    static Stream<Arguments> badBindings() {
        return Stream.of(
                Arguments.of(List.of(), "no veggur:tenant: binding"),
                Arguments.of(List.of(VM, ROLE, CLIENT), "no veggur:tenant: binding"),
                Arguments.of(List.of(TENANT, ROLE, CLIENT), "no veggur:vm: binding"),
                Arguments.of(List.of(TENANT, VM, CLIENT), "no veggur:role: binding"),
                Arguments.of(List.of(TENANT, VM, ROLE), "no veggur:client: binding"),
                Arguments.of(List.of(TENANT, TENANT, VM, ROLE, CLIENT), "repeated veggur:tenant: binding"),
                Arguments.of(List.of(TENANT, "veggur:tenant:carol", VM, ROLE, CLIENT), "repeated veggur:tenant:"),
                Arguments.of(List.of(TENANT, VM, "veggur:vm:alice/db", ROLE, CLIENT), "repeated veggur:vm:"),
                Arguments.of(List.of(TENANT, VM, ROLE, "veggur:role:write", CLIENT), "repeated veggur:role:"),
                Arguments.of(List.of(TENANT, VM, ROLE, CLIENT, CLIENT), "repeated client address block"),
                Arguments.of(List.of("veggur:tenant:Bob", VM, ROLE, CLIENT), "invalid tenant name 'Bob'"),
                Arguments.of(List.of("veggur:tenant:", VM, ROLE, CLIENT), "invalid tenant name ''"),
                Arguments.of(List.of(TENANT, "veggur:vm:web", ROLE, CLIENT), "is not OWNER/NAME"),
                Arguments.of(List.of(TENANT, "veggur:vm:alice/web/x", ROLE, CLIENT), "invalid VM name"),
                Arguments.of(List.of(TENANT, "veggur:vm:../web", ROLE, CLIENT), "invalid tenant name"),
                Arguments.of(List.of(TENANT, VM, "veggur:role:READ", CLIENT), "unknown role 'READ'"),
                Arguments.of(List.of(TENANT, VM, "veggur:role:admin", CLIENT), "unknown role 'admin'"),
                Arguments.of(List.of(TENANT, VM, ROLE, "veggur:client:10.0.0.2"), "no /PREFIX"),
                Arguments.of(List.of(TENANT, VM, ROLE, "veggur:client:10.0.0.2/24"), "host bits set"),
                Arguments.of(List.of(TENANT, VM, ROLE, "veggur:client:host.example/32"), "malformed address block"),
                Arguments.of(List.of(TENANT, VM, ROLE, CLIENT, "veggur:admin:yes"),
                        "unknown binding veggur:admin:yes"));
    }

    @ParameterizedTest
    @MethodSource("badBindings")
    void from_missingRepeatedOrMalformedBinding_isRefused(List<String> uris, String why) throws Exception {
        var certificate = CertificateBuilder.withUris(uris.toArray(String[]::new));

        assertThatThrownBy(() -> ClientBinding.from(certificate))
                .isInstanceOf(CertificateException.class)
                .hasMessageContaining(why);
    }

    private static GeneralName uri(String uri) {
        return new GeneralName(GeneralName.uniformResourceIdentifier, uri);
    }
}
