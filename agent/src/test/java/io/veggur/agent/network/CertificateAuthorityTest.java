package io.veggur.agent.network;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyStore;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CertificateAuthorityTest {
    private static final ClientBinding BOB_READS_WEB = new ClientBinding("bob", new VmRef("alice", "web"), Role.READ,
            List.of(Cidr.parse("127.0.0.1/32")));

    @TempDir
    Path home;

    @Test
    void open_firstUse_createsPrivateDirectoryKeyAndCertificate() throws Exception {
        Path directory = home.resolve("ca");

        CertificateAuthority ca = CertificateAuthority.open(directory);

        assertThat(mode(directory)).isEqualTo("rwx------");
        assertThat(mode(directory.resolve(CertificateAuthority.KEY_FILE))).isEqualTo("rw-------");
        assertThat(Files.readString(directory.resolve(CertificateAuthority.KEY_FILE)))
                .startsWith("-----BEGIN PRIVATE KEY-----\n");
        assertThat(ca.certificate().getBasicConstraints()).isZero();
        assertThat(ca.certificate().getKeyUsage()[5]).as("keyCertSign").isTrue();
        assertThat(ca.certificate().getSigAlgName()).isEqualTo("SHA256withECDSA");
        try (var files = Files.list(directory)) {
            assertThat(files.map(path -> path.getFileName().toString()))
                    .containsExactlyInAnyOrder(CertificateAuthority.KEY_FILE, CertificateAuthority.CERTIFICATE_FILE);
        }
    }

    @Test
    void open_existingCa_loadsTheSameCaWhichStillSigns() throws Exception {
        X509Certificate created = CertificateAuthority.open(home).certificate();

        CertificateAuthority loaded = CertificateAuthority.open(home);
        Instant now = Instant.now();
        Identity client = loaded.issueClient(BOB_READS_WEB, now, now.plus(Duration.ofHours(1)));

        assertThat(loaded.certificate()).isEqualTo(created);
        client.certificate().verify(created.getPublicKey());
    }

    @Test
    void open_keyWithoutCertificate_startsAFreshCa() throws Exception {
        X509Certificate first = CertificateAuthority.open(home).certificate();
        Files.delete(home.resolve(CertificateAuthority.CERTIFICATE_FILE));

        X509Certificate second = CertificateAuthority.open(home).certificate();

        assertThat(second).isNotEqualTo(first);
    }

    @Test
    void open_keyReadableByOthers_isRefused() throws Exception {
        CertificateAuthority.open(home);
        Files.setPosixFilePermissions(home.resolve(CertificateAuthority.KEY_FILE),
                PosixFilePermissions.fromString("rw-r--r--"));

        assertThatThrownBy(() -> CertificateAuthority.open(home)).isInstanceOf(IOException.class)
                .hasMessageContaining("ca.key is accessible to others (mode rw-r--r--; it must be 0600)");
    }

    @Test
    void open_keyOfAnotherCa_isRefused() throws Exception {
        CertificateAuthority.open(home);
        Path other = home.resolve("other");
        CertificateAuthority.open(other);
        Files.copy(other.resolve(CertificateAuthority.KEY_FILE), home.resolve(CertificateAuthority.KEY_FILE),
                StandardCopyOption.REPLACE_EXISTING);

        assertThatThrownBy(() -> CertificateAuthority.open(home)).isInstanceOf(IOException.class)
                .hasMessageContaining("ca.key does not belong to ca.crt");
    }

    @Test
    void issueServer_addressesAndNames_becomeSubjectAlternativeNamesForServerAuth() throws Exception {
        CertificateAuthority ca = CertificateAuthority.open(home);

        Identity server = ca.issueServer(List.of(InetAddress.ofLiteral("127.0.0.1"), InetAddress.ofLiteral("::1")),
                List.of("vmi.example"), Duration.ofDays(30));

        X509Certificate certificate = server.certificate();
        assertThat(certificate.getSubjectAlternativeNames()).containsExactlyInAnyOrder(
                List.of(7, "127.0.0.1"), List.of(7, "0:0:0:0:0:0:0:1"), List.of(2, "vmi.example"));
        assertThat(certificate.getExtendedKeyUsage()).containsExactly("1.3.6.1.5.5.7.3.1");
        assertThat(certificate.getBasicConstraints()).isEqualTo(-1);
        assertThat(certificate.getNotAfter().toInstant()).isBetween(Instant.now().plus(Duration.ofDays(29)),
                Instant.now().plus(Duration.ofDays(31)));
        assertThat(server.chain()).containsExactly(certificate, ca.certificate());
        validate(certificate, ca.certificate());
    }

    @Test
    void issueClient_binding_isCarriedWithValidityAndClientAuth() throws Exception {
        CertificateAuthority ca = CertificateAuthority.open(home);
        Instant notBefore = Instant.parse("2030-01-01T00:00:00Z");

        X509Certificate certificate = ca.issueClient(BOB_READS_WEB, notBefore, notBefore.plus(Duration.ofDays(7)))
                .certificate();

        assertThat(ClientBinding.from(certificate)).isEqualTo(BOB_READS_WEB);
        assertThat(certificate.getNotBefore().toInstant()).isEqualTo(notBefore);
        assertThat(certificate.getNotAfter().toInstant()).isEqualTo(notBefore.plus(Duration.ofDays(7)));
        assertThat(certificate.getExtendedKeyUsage()).containsExactly("1.3.6.1.5.5.7.3.2");
        assertThat(certificate.getSubjectX500Principal().getName()).isEqualTo("CN=bob");
    }

    @Test
    void issueClient_manyCertificates_haveDistinctRandom128BitSerials() throws Exception {
        CertificateAuthority ca = CertificateAuthority.open(home);
        Instant now = Instant.now();
        Set<BigInteger> serials = new HashSet<>();
        List<Integer> lengths = new ArrayList<>();

        for (int i = 0; i < 50; i++) {
            BigInteger serial = ca.issueClient(BOB_READS_WEB, now, now.plusSeconds(60)).serial();
            serials.add(serial);
            lengths.add(serial.bitLength());
        }

        assertThat(serials).hasSize(50).allSatisfy(serial -> assertThat(serial.signum()).isPositive());
        assertThat(lengths).allSatisfy(bits -> assertThat(bits).isLessThanOrEqualTo(128))
                .anySatisfy(bits -> assertThat(bits).isGreaterThan(120));
    }

    @Test
    void pkcs12_clientIdentity_loadsWithTheJdkAloneWithKeyChainAndTrustedCa() throws Exception {
        CertificateAuthority ca = CertificateAuthority.open(home);
        Instant now = Instant.now();
        Identity client = ca.issueClient(BOB_READS_WEB, now, now.plus(Duration.ofDays(1)));
        char[] password = "s3cret".toCharArray();
        Path file = home.resolve("bob.p12");

        client.writePkcs12(file, password);

        assertThat(mode(file)).isEqualTo("rw-------");
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(new ByteArrayInputStream(Files.readAllBytes(file)), password);
        assertThat(store.isKeyEntry(Identity.KEY_ALIAS)).isTrue();
        assertThat(store.getKey(Identity.KEY_ALIAS, password)).isEqualTo(client.key());
        assertThat(store.getCertificateChain(Identity.KEY_ALIAS))
                .containsExactly(client.certificate(), ca.certificate());
        assertThat(store.isCertificateEntry(Identity.CA_ALIAS)).isTrue();
        assertThat(store.getCertificate(Identity.CA_ALIAS)).isEqualTo(ca.certificate());
        assertThatThrownBy(() -> KeyStore.getInstance("PKCS12")
                .load(new ByteArrayInputStream(client.pkcs12(password)), "wrong".toCharArray()))
                .isInstanceOf(IOException.class);
    }

    private static void validate(X509Certificate certificate, X509Certificate ca) throws Exception {
        var path = CertificateFactory.getInstance("X.509").generateCertPath(List.of(certificate));
        var parameters = new PKIXParameters(Set.of(new TrustAnchor(ca, null)));
        parameters.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(path, parameters);
    }

    private static String mode(Path path) throws IOException {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(path));
    }
}
