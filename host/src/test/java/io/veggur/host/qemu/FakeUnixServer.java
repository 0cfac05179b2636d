package io.veggur.host.qemu;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * A scripted peer on a UNIX socket standing in for QEMU: it accepts one client and runs a script against it on a
 * virtual thread. Closing it closes both sockets, which also unblocks a script stuck writing to a client that stopped
 * reading.
 */
final class FakeUnixServer implements AutoCloseable {
    @FunctionalInterface
    interface Script {
        void run(Peer peer) throws Exception;
    }

    private final Path path;
    private final ServerSocketChannel server;
    private final CompletableFuture<SocketChannel> accepted = new CompletableFuture<>();
    /** Completes when the script ends, exceptionally if it failed. */
    final CompletableFuture<Void> done = new CompletableFuture<>();

    private FakeUnixServer(Path path, ServerSocketChannel server) {
        this.path = path;
        this.server = server;
    }

    static FakeUnixServer start(Path directory, Script script) throws IOException {
        Path path = directory.resolve("fake.sock");
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        FakeUnixServer fake = new FakeUnixServer(path, server);
        Thread.ofVirtual().name("fake-server").start(() -> {
            try (SocketChannel client = server.accept()) {
                fake.accepted.complete(client);
                script.run(new Peer(client));
                fake.done.complete(null);
            } catch (Exception e) {
                fake.done.completeExceptionally(e);
            }
        });
        return fake;
    }

    Path path() {
        return path;
    }

    @Override
    public void close() throws IOException {
        server.close();
        SocketChannel client = accepted.getNow(null);
        if (client != null) {
            client.close();
        }
    }

    static final class Peer {
        private final SocketChannel channel;
        private final ByteBuffer in = ByteBuffer.allocate(4096).flip();
        /** Acknowledgements skipped by {@link #readPacket}. */
        int acks;

        Peer(SocketChannel channel) {
            this.channel = channel;
        }

        void send(String text) throws IOException {
            send(text.getBytes(StandardCharsets.ISO_8859_1));
        }

        void send(byte[] bytes) throws IOException {
            ByteBuffer buffer = ByteBuffer.wrap(bytes);
            while (buffer.hasRemaining()) {
                channel.write(buffer);
            }
        }

        /** Frames a payload that needs no escaping, with a correct checksum. */
        void sendPacket(String payload) throws IOException {
            int sum = 0;
            for (char c : payload.toCharArray()) {
                sum += c;
            }
            send("$" + payload + "#" + String.format("%02x", sum & 0xff));
        }

        /** The next packet's raw payload, skipping acknowledgements; the checksum is not checked. */
        String readPacket() throws IOException {
            int b;
            while ((b = read()) != '$') {
                if (b != '+') {
                    throw new IOException("fake server got byte " + b + " outside a packet");
                }
                acks++;
            }
            StringBuilder payload = new StringBuilder();
            while ((b = read()) != '#') {
                payload.append((char) b);
            }
            read();
            read();
            return payload.toString();
        }

        /** The next byte the client sent. */
        int read() throws IOException {
            while (!in.hasRemaining()) {
                in.clear();
                int n = channel.read(in);
                in.flip();
                if (n < 0) {
                    throw new EOFException("client closed the connection");
                }
            }
            return in.get() & 0xff;
        }

        String readLine() throws IOException {
            ByteArrayOutputStream line = new ByteArrayOutputStream();
            for (int b = read(); b != '\n'; b = read()) {
                line.write(b);
            }
            return line.toString(StandardCharsets.UTF_8);
        }

        /** Blocks until the client closes its end. */
        void awaitClientClose() throws IOException {
            try {
                while (true) {
                    read();
                }
            } catch (EOFException closed) {
                // expected
            }
        }
    }
}
