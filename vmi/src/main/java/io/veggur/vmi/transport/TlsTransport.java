package io.veggur.vmi.transport;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.Socket;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.UnrecoverableKeyException;
import java.util.Collections;
import java.util.Map;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * Mutual TLS 1.3 to the network flavor's endpoint: {@code tls://HOST:PORT[?identity=FILE]} (an IPv6 address in
 * brackets). Only the JDK is needed.
 *
 * <ul>
 *   <li><b>Identity</b>: the PKCS#12 file the agent issued (one private key with its certificate chain, and the CA
 *       certificate as a trusted-certificate entry): {@code FILE} from the endpoint, else the file named by
 *       {@value #IDENTITY_VARIABLE}.
 *   <li><b>Password</b>: {@value #PASSWORD_VARIABLE} if set, else the first line of {@code FILE.password} next to
 *       the identity. It never appears in messages.
 *   <li><b>Trust</b>: only the CA certificates in the identity file (not the JDK's trust store, not the client's own
 *       certificate). The server's certificate must chain to one of them and name {@code HOST}: an IP address SAN
 *       for an address, a DNS SAN for a name (HTTPS endpoint identification).
 * </ul>
 *
 * <p>{@link #open} completes the handshake, so a server that is not who it should be fails there. The server checks
 * the client's certificate during the handshake too, but under TLS 1.3 a refusal reaches the client only with its
 * first read (a fatal alert, or the end of the stream when the agent refused the certificate's binding).
 */
public record TlsTransport(String host, int port, Path identity) implements Transport {
    public static final String IDENTITY_VARIABLE = "VEGGUR_TLS_IDENTITY";
    public static final String PASSWORD_VARIABLE = "VEGGUR_TLS_PASSWORD";
    private static final String PROTOCOL = "TLSv1.3";

    public TlsTransport {
        TcpTransport.check(host, port);
    }

    static TlsTransport parse(String endpoint, Map<String, String> environment) {
        URI uri = TcpTransport.uri(endpoint);
        String identity = environment.get(IDENTITY_VARIABLE);
        if (uri.getRawQuery() != null) {
            String query = uri.getRawQuery();
            if (!query.startsWith("identity=") || query.contains("&") || query.length() == "identity=".length()) {
                throw new IllegalArgumentException("'" + endpoint + "' takes one parameter, identity=FILE");
            }
            identity = URLDecoder.decode(query.substring("identity=".length()), StandardCharsets.UTF_8);
        }
        if (identity == null || identity.isEmpty()) {
            throw new IllegalArgumentException("'" + endpoint + "' needs a client identity: add ?identity=FILE or set "
                    + IDENTITY_VARIABLE);
        }
        return new TlsTransport(TcpTransport.host(uri), uri.getPort(), Path.of(identity));
    }

    @Override
    public Connection open() throws IOException {
        SSLContext context = context();
        Socket tcp = TcpTransport.connect(host, port, describe());
        try {
            SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(tcp, host, port, true);
            SSLParameters parameters = socket.getSSLParameters();
            parameters.setProtocols(new String[] {PROTOCOL});
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            return TcpTransport.connection(socket);
        } catch (IOException e) {
            tcp.close();
            throw new IOException("TLS handshake with " + describe() + " failed: " + e.getMessage(), e);
        }
    }

    @Override
    public String describe() {
        return "tls://" + TcpTransport.authority(host, port);
    }

    private SSLContext context() throws IOException {
        byte[] file = read();
        char[] password = password();
        KeyStore store = load(file, password);
        try {
            // Trust only the CA entries: a store that also held the key entry would trust the client's certificate.
            KeyStore anchors = KeyStore.getInstance("PKCS12");
            anchors.load(null, null);
            int keys = 0;
            for (String alias : Collections.list(store.aliases())) {
                if (store.isKeyEntry(alias)) {
                    keys++;
                } else if (store.isCertificateEntry(alias)) {
                    anchors.setCertificateEntry(alias, store.getCertificate(alias));
                }
            }
            if (keys != 1) {
                throw new IOException("TLS identity " + identity + " holds " + keys
                        + " private keys; it must hold exactly one");
            }
            if (anchors.size() == 0) {
                throw new IOException("TLS identity " + identity + " holds no CA certificate to verify the server");
            }
            KeyManagerFactory keyManagers = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            keyManagers.init(store, password);
            TrustManagerFactory trustManagers = TrustManagerFactory.getInstance("PKIX");
            trustManagers.init(anchors);
            SSLContext context = SSLContext.getInstance(PROTOCOL);
            context.init(keyManagers.getKeyManagers(), trustManagers.getTrustManagers(), null);
            return context;
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot use TLS identity " + identity + ": " + e.getMessage(), e);
        }
    }

    private byte[] read() throws IOException {
        try {
            return Files.readAllBytes(identity);
        } catch (NoSuchFileException e) {
            throw new IOException("TLS identity " + identity + " does not exist");
        } catch (AccessDeniedException e) {
            throw new IOException("no permission to read TLS identity " + identity);
        }
    }

    private KeyStore load(byte[] bytes, char[] password) throws IOException {
        try {
            KeyStore store = KeyStore.getInstance("PKCS12");
            store.load(new ByteArrayInputStream(bytes), password);
            return store;
        } catch (IOException e) {
            // The JDK reports a wrong password as an IOException caused by UnrecoverableKeyException.
            throw new IOException("cannot read TLS identity " + identity + ": " + (e.getCause()
                    instanceof UnrecoverableKeyException ? "wrong password" : "not a PKCS#12 file"));
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot read TLS identity " + identity + ": " + e.getMessage());
        }
    }

    private char[] password() throws IOException {
        String password = System.getenv(PASSWORD_VARIABLE);
        if (password != null) {
            return password.toCharArray();
        }
        Path file = Path.of(identity + ".password");
        try {
            return Files.readString(file, StandardCharsets.UTF_8).lines().findFirst().orElse("").toCharArray();
        } catch (NoSuchFileException e) {
            throw new IOException("no password for TLS identity " + identity + ": set " + PASSWORD_VARIABLE
                    + " or write it to " + file);
        } catch (AccessDeniedException e) {
            throw new IOException("no permission to read " + file);
        }
    }
}
