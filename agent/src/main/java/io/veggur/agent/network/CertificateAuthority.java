package io.veggur.agent.network;

import io.veggur.host.vm.VeggurHome;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.DEROctetString;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The agent's certificate authority for the network flavor: it issues the server certificates of the TLS endpoints
 * and the tenants' client certificates, whose {@link ClientBinding} says which VM, role and client addresses they are
 * good for.
 *
 * <p>Every key is ECDSA on P-256, signed with SHA-256: the JDK's TLS 1.3 supports it for both server and client
 * authentication with its own providers, so clients need nothing but the JDK. BouncyCastle only builds certificates;
 * keys, signatures and TLS stay with the JDK.
 *
 * <p>On disk, in a directory kept at mode 0700: {@value #KEY_FILE}, the CA's private key as unencrypted PKCS#8 PEM
 * ({@code PRIVATE KEY}, mode 0600, refused if group or others may read it), and {@value #CERTIFICATE_FILE}, its
 * self-signed certificate as PEM. Each is written to a temporary file and renamed, the certificate last, so the
 * certificate's presence marks a complete CA: a key without a certificate (creation interrupted) never signed
 * anything and is replaced.
 *
 * <p>Serial numbers are 128 random bits. Instances are immutable and safe to share between threads.
 */
public final class CertificateAuthority {
    public static final String KEY_FILE = "ca.key";
    public static final String CERTIFICATE_FILE = "ca.crt";
    static final Set<PosixFilePermission> PRIVATE = PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> PUBLIC = PosixFilePermissions.fromString("rw-r--r--");
    private static final String SIGNATURE = "SHA256withECDSA";
    private static final Duration CA_VALIDITY = Duration.ofDays(3650);
    /** Server certificates (and the CA's) start this much in the past, for clients whose clock lags the host's. */
    private static final Duration CLOCK_SKEW = Duration.ofMinutes(5);
    private static final Pattern PEM_KEY =
            Pattern.compile("-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\\s]+)-----END PRIVATE KEY-----");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final PrivateKey key;
    private final X509Certificate certificate;

    private CertificateAuthority(PrivateKey key, X509Certificate certificate) {
        this.key = key;
        this.certificate = certificate;
    }

    /** Loads the CA kept in {@code directory}, creating both on first use. */
    public static CertificateAuthority open(Path directory) throws IOException {
        VeggurHome.privateDirectory(directory);
        Path keyFile = directory.resolve(KEY_FILE);
        Path certificateFile = directory.resolve(CERTIFICATE_FILE);
        try {
            if (Files.exists(certificateFile)) {
                return load(keyFile, certificateFile);
            }
            return create(keyFile, certificateFile);
        } catch (GeneralSecurityException e) {
            throw new IOException("unusable CA in " + directory + ": " + e.getMessage(), e);
        }
    }

    public X509Certificate certificate() {
        return certificate;
    }

    /** A certificate for a TLS endpoint, valid from now for {@code validity}, for these addresses and DNS names. */
    public Identity issueServer(List<InetAddress> addresses, List<String> dnsNames, Duration validity)
            throws GeneralSecurityException {
        if (addresses.isEmpty() && dnsNames.isEmpty()) {
            throw new IllegalArgumentException("a server certificate needs at least one address or DNS name");
        }
        List<GeneralName> names = new ArrayList<>();
        // The raw bytes: the textual form of an IPv6 address may carry a scope ("%eth0") that no certificate can.
        addresses.forEach(address -> names.add(new GeneralName(GeneralName.iPAddress,
                new DEROctetString(address.getAddress()))));
        dnsNames.forEach(name -> names.add(new GeneralName(GeneralName.dNSName, name)));
        Instant now = Instant.now();
        return issue("CN=Veggur endpoint", names, KeyPurposeId.id_kp_serverAuth, now.minus(CLOCK_SKEW),
                now.plus(validity));
    }

    /**
     * A tenant's client certificate carrying {@code binding}, valid from {@code notBefore} to {@code notAfter} exactly
     * (start a few minutes before now if the client's clock may lag the host's).
     */
    public Identity issueClient(ClientBinding binding, Instant notBefore, Instant notAfter)
            throws GeneralSecurityException {
        List<GeneralName> names = binding.uris().stream()
                .map(uri -> new GeneralName(GeneralName.uniformResourceIdentifier, uri))
                .toList();
        return issue("CN=" + binding.tenant(), names, KeyPurposeId.id_kp_clientAuth, notBefore, notAfter);
    }

    private Identity issue(String subject, List<GeneralName> names, KeyPurposeId purpose, Instant notBefore,
            Instant notAfter) throws GeneralSecurityException {
        if (!notAfter.isAfter(notBefore)) {
            throw new IllegalArgumentException("validity ends before it starts");
        }
        KeyPair pair = newKeyPair();
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(certificate, serial(),
                Date.from(notBefore), Date.from(notAfter), new X500Name(subject), pair.getPublic());
        JcaX509ExtensionUtils extensions = new JcaX509ExtensionUtils();
        try {
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
                    .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(purpose))
                    .addExtension(Extension.subjectAlternativeName, false,
                            new GeneralNames(names.toArray(GeneralName[]::new)))
                    .addExtension(Extension.subjectKeyIdentifier, false,
                            extensions.createSubjectKeyIdentifier(pair.getPublic()))
                    .addExtension(Extension.authorityKeyIdentifier, false,
                            extensions.createAuthorityKeyIdentifier(certificate));
        } catch (CertIOException e) {
            throw new GeneralSecurityException("cannot encode a certificate extension", e);
        }
        return new Identity(pair.getPrivate(), List.of(sign(builder, key), certificate));
    }

    private static CertificateAuthority create(Path keyFile, Path certificateFile)
            throws IOException, GeneralSecurityException {
        KeyPair pair = newKeyPair();
        Instant now = Instant.now();
        X500Name name = new X500Name("CN=Veggur agent CA " + HexFormat.of().toHexDigits(RANDOM.nextInt()));
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(name, serial(),
                Date.from(now.minus(CLOCK_SKEW)), Date.from(now.plus(CA_VALIDITY)), name, pair.getPublic());
        try {
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                    .addExtension(Extension.subjectKeyIdentifier, false,
                            new JcaX509ExtensionUtils().createSubjectKeyIdentifier(pair.getPublic()));
        } catch (CertIOException e) {
            throw new GeneralSecurityException("cannot encode a certificate extension", e);
        }
        X509Certificate certificate = sign(builder, pair.getPrivate());
        writeFile(keyFile, pem("PRIVATE KEY", pair.getPrivate().getEncoded()), PRIVATE);
        writeFile(certificateFile, pem("CERTIFICATE", certificate.getEncoded()), PUBLIC);
        return new CertificateAuthority(pair.getPrivate(), certificate);
    }

    private static CertificateAuthority load(Path keyFile, Path certificateFile)
            throws IOException, GeneralSecurityException {
        if (!Files.exists(keyFile)) {
            throw new GeneralSecurityException(KEY_FILE + " is missing");
        }
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(keyFile);
        if (!PRIVATE.containsAll(mode)) {
            throw new GeneralSecurityException(KEY_FILE + " is accessible to others (mode "
                    + PosixFilePermissions.toString(mode) + "; it must be 0600)");
        }
        Matcher pem = PEM_KEY.matcher(Files.readString(keyFile, StandardCharsets.US_ASCII));
        if (!pem.find()) {
            throw new GeneralSecurityException(KEY_FILE + " holds no PEM PRIVATE KEY");
        }
        PrivateKey key = KeyFactory.getInstance("EC")
                .generatePrivate(new PKCS8EncodedKeySpec(Base64.getMimeDecoder().decode(pem.group(1))));
        X509Certificate certificate = (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(Files.readAllBytes(certificateFile)));
        if (!matches(key, certificate.getPublicKey())) {
            throw new GeneralSecurityException(KEY_FILE + " does not belong to " + CERTIFICATE_FILE);
        }
        return new CertificateAuthority(key, certificate);
    }

    /** Whether the key signs what the public key verifies: a mixed-up key and certificate would issue garbage. */
    private static boolean matches(PrivateKey key, PublicKey publicKey) throws GeneralSecurityException {
        byte[] challenge = new byte[32];
        RANDOM.nextBytes(challenge);
        Signature signer = Signature.getInstance(SIGNATURE);
        signer.initSign(key);
        signer.update(challenge);
        Signature verifier = Signature.getInstance(SIGNATURE);
        verifier.initVerify(publicKey);
        verifier.update(challenge);
        return verifier.verify(signer.sign());
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        return generator.generateKeyPair();
    }

    /** 128 random bits, positive and non-zero as RFC 5280 requires. */
    private static BigInteger serial() {
        BigInteger serial;
        do {
            serial = new BigInteger(128, RANDOM);
        } while (serial.signum() == 0);
        return serial;
    }

    private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey key)
            throws GeneralSecurityException {
        try {
            return new JcaX509CertificateConverter().getCertificate(
                    builder.build(new JcaContentSignerBuilder(SIGNATURE).build(key)));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException("cannot sign a certificate", e);
        }
    }

    private static byte[] pem(String type, byte[] der) {
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(der);
        return ("-----BEGIN " + type + "-----\n" + body + "\n-----END " + type + "-----\n")
                .getBytes(StandardCharsets.US_ASCII);
    }

    /** Writes a file with this mode from its first byte on (a temporary file, then renamed over the target). */
    static void writeFile(Path file, byte[] content, Set<PosixFilePermission> mode) throws IOException {
        Path directory = file.toAbsolutePath().getParent();
        Path temporary = Files.createTempFile(directory, "." + file.getFileName(), ".tmp",
                PosixFilePermissions.asFileAttribute(mode));
        try {
            Files.write(temporary, content);
            Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temporary);
        }
    }
}
