package io.veggur.vmi.transport;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;

/**
 * An AF_VSOCK stream to {@code vsock:CID:PORT} (decimal; CID 2 is the host, 3 and up are VMs), for a monitoring VM
 * whose host exposes introspection over vhost-vsock. The JDK has no AF_VSOCK, so the socket is driven through the
 * Foreign Function & Memory API ({@link Libc}); the process needs {@code --enable-native-access=ALL-UNNAMED} (the
 * veggur jar's manifest grants it). Nothing is authenticated or encrypted beyond what the hypervisor guarantees about
 * CIDs.
 */
public record VsockTransport(long cid, long port) implements Transport {
    /** {@code 0xFFFFFFFF} is VMADDR_CID_ANY / VMADDR_PORT_ANY, which name no peer. */
    static final long MAX_ADDRESS = 0xFFFF_FFFEL;
    /** vsock's own default is 2 s, short for a host under load; this matches the TCP transport. */
    static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);

    public VsockTransport {
        if (cid < 0 || cid > MAX_ADDRESS || port < 0 || port > MAX_ADDRESS) {
            throw new IllegalArgumentException("invalid vsock endpoint " + cid + ":" + port + " (CID and port are 0.."
                    + MAX_ADDRESS + ")");
        }
    }

    static VsockTransport parse(String endpoint) {
        String[] parts = endpoint.substring("vsock:".length()).split(":", -1);
        if (parts.length != 2 || !parts[0].matches("[0-9]{1,10}") || !parts[1].matches("[0-9]{1,10}")) {
            throw new IllegalArgumentException("malformed endpoint '" + endpoint + "': expected vsock:CID:PORT");
        }
        return new VsockTransport(Long.parseLong(parts[0]), Long.parseLong(parts[1]));
    }

    @Override
    public Connection open() throws IOException {
        return open(CONNECT_TIMEOUT);
    }

    /** Connects, giving up after {@code timeout}. */
    Connection open(Duration timeout) throws IOException {
        VsockSocket socket = VsockSocket.connect(cid, port, timeout, describe());
        return new Connection() {
            @Override
            public InputStream input() {
                return socket.input();
            }

            @Override
            public OutputStream output() {
                return socket.output();
            }

            @Override
            public void close() {
                socket.close();
            }
        };
    }

    @Override
    public String describe() {
        return "vsock:" + cid + ":" + port;
    }
}
