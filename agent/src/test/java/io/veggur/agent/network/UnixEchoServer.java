package io.veggur.agent.network;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Stands in for a VM's introspection socket: echoes every byte back on each connection. */
final class UnixEchoServer implements AutoCloseable {
    private final ServerSocketChannel server;
    private final Set<SocketChannel> clients = ConcurrentHashMap.newKeySet();

    UnixEchoServer(Path path) throws IOException {
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path));
        Thread.ofVirtual().start(this::acceptLoop);
    }

    /** Connections open now (the endpoint opens one per admitted client). */
    int connections() {
        return (int) clients.stream().filter(SocketChannel::isOpen).count();
    }

    /** Ends every connection from the VM side, as a stopping VM would. */
    void disconnectAll() throws IOException {
        for (SocketChannel client : clients) {
            client.close();
        }
    }

    private void acceptLoop() {
        try {
            while (true) {
                SocketChannel client = server.accept();
                clients.add(client);
                Thread.ofVirtual().start(() -> echo(client));
            }
        } catch (IOException e) {
            // Closed.
        }
    }

    private static void echo(SocketChannel client) {
        ByteBuffer buffer = ByteBuffer.allocate(8192);
        try (client) {
            while (client.read(buffer) >= 0) {
                buffer.flip();
                while (buffer.hasRemaining()) {
                    client.write(buffer);
                }
                buffer.clear();
            }
        } catch (IOException e) {
            // The endpoint went away.
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        disconnectAll();
    }
}
