package io.veggur.vmi.transport;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Where an introspection socket is and how to reach it. Endpoints are written as URIs: {@code unix:/path/vmi.sock}
 * (or a bare path), {@code tcp://HOST:PORT} ({@link TcpTransport}), {@code tls://HOST:PORT[?identity=FILE]}
 * ({@link TlsTransport}), and from inside a monitoring VM {@code serial:NAME} or {@code serial:/dev/PATH}
 * ({@link SerialTransport}) and {@code vsock:CID:PORT} ({@link VsockTransport}).
 */
public sealed interface Transport permits UnixSocketTransport, TcpTransport, TlsTransport, SerialTransport,
        VsockTransport {
    Connection open() throws IOException;

    /** A human-readable endpoint, safe to print. */
    String describe();

    static Transport parse(String endpoint) {
        if (endpoint.startsWith("unix:")) {
            return new UnixSocketTransport(Path.of(endpoint.substring("unix:".length())));
        }
        if (endpoint.startsWith("tcp:")) {
            return TcpTransport.parse(endpoint);
        }
        if (endpoint.startsWith("tls:")) {
            return TlsTransport.parse(endpoint, System.getenv());
        }
        if (endpoint.startsWith("serial:")) {
            return SerialTransport.parse(endpoint);
        }
        if (endpoint.startsWith("vsock:")) {
            return VsockTransport.parse(endpoint);
        }
        if (endpoint.matches("^[a-z][a-z0-9+.-]*:.*") && !endpoint.startsWith("/")) {
            throw new IllegalArgumentException("unsupported endpoint scheme in '" + endpoint
                    + "' (supported: unix:PATH, tcp://HOST:PORT, tls://HOST:PORT[?identity=FILE], serial:NAME, "
                    + "serial:/dev/PATH, vsock:CID:PORT)");
        }
        return new UnixSocketTransport(Path.of(endpoint));
    }
}
