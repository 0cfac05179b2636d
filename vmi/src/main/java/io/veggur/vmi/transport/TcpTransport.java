package io.veggur.vmi.transport;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;

/**
 * Plain TCP, {@code tcp://HOST:PORT} (an IPv6 address in brackets): the network flavor's plaintext mode, where the
 * agent lets clients in by address only. Nothing is authenticated or encrypted; prefer {@link TlsTransport}.
 */
public record TcpTransport(String host, int port) implements Transport {
    private static final int CONNECT_TIMEOUT_MILLIS = 10_000;
    /** Replies are read frame by frame: a buffer turns a header read and a payload read into one system call. */
    private static final int INPUT_BUFFER_BYTES = 64 * 1024;

    public TcpTransport {
        check(host, port);
    }

    static void check(String host, int port) {
        if (host.isEmpty() || port < 1 || port > 65535) {
            throw new IllegalArgumentException("invalid TCP endpoint " + host + ":" + port);
        }
    }

    static TcpTransport parse(String endpoint) {
        URI uri = uri(endpoint);
        if (uri.getRawQuery() != null) {
            throw new IllegalArgumentException("'" + endpoint + "' takes no parameters (tcp://HOST:PORT)");
        }
        return new TcpTransport(host(uri), uri.getPort());
    }

    @Override
    public Connection open() throws IOException {
        return connection(connect(host, port, describe()));
    }

    @Override
    public String describe() {
        return "tcp://" + authority(host, port);
    }

    /**
     * Parses {@code SCHEME://HOST:PORT[?QUERY]}: a host and a port, no user, path or fragment, so nothing in an
     * endpoint is silently ignored.
     */
    static URI uri(String endpoint) {
        URI uri;
        try {
            uri = new URI(endpoint);
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("malformed endpoint '" + endpoint + "': " + e.getReason());
        }
        if (uri.getHost() == null || uri.getPort() < 0 || uri.getRawUserInfo() != null
                || !uri.getRawPath().isEmpty() || uri.getRawFragment() != null) {
            throw new IllegalArgumentException("malformed endpoint '" + endpoint + "': expected "
                    + uri.getScheme() + "://HOST:PORT");
        }
        return uri;
    }

    /** The host without the brackets of an IPv6 literal. */
    static String host(URI uri) {
        String host = uri.getHost();
        return host.startsWith("[") ? host.substring(1, host.length() - 1) : host;
    }

    static String authority(String host, int port) {
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }

    /** A connected socket with Nagle's algorithm off: the protocol is request/reply, and latency is what counts. */
    static Socket connect(String host, int port, String endpoint) throws IOException {
        Socket socket = new Socket();
        try {
            socket.setTcpNoDelay(true);
            socket.connect(new InetSocketAddress(host, port), CONNECT_TIMEOUT_MILLIS);
        } catch (IOException e) {
            socket.close();
            throw new IOException("cannot connect to " + endpoint + ": "
                    + (e instanceof UnknownHostException ? "unknown host " + host : e.getMessage()), e);
        }
        return socket;
    }

    static Connection connection(Socket socket) throws IOException {
        InputStream input = new BufferedInputStream(socket.getInputStream(), INPUT_BUFFER_BYTES);
        OutputStream output = socket.getOutputStream();
        return new Connection() {
            @Override
            public InputStream input() {
                return input;
            }

            @Override
            public OutputStream output() {
                return output;
            }

            @Override
            public void close() throws IOException {
                socket.close();
            }
        };
    }
}
