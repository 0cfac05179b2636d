package io.veggur.host.supervisor;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Owns the guest's serial port. QEMU's socket chardev takes one client, and its own {@code logfile=} option
 * duplicates bytes now and then (seen with QEMU 7.2), so the supervisor stays the one client: it appends everything
 * the guest prints to the console log itself, and forwards whatever is written to its own input socket into the
 * guest. Both sockets live in the VM's private 0700 directory: the console is a host-side tool, not a tenant one.
 */
final class ConsoleRelay implements AutoCloseable {
    private static final Logger LOG = System.getLogger(ConsoleRelay.class.getName());

    private final SocketChannel serial;
    private final ServerSocketChannel input;
    private final Path inputPath;

    ConsoleRelay(Path qemuSerialSocket, Path consoleLog, Path inputSocket) throws IOException {
        this.serial = SocketChannel.open(UnixDomainSocketAddress.of(qemuSerialSocket));
        Files.deleteIfExists(inputSocket);
        this.input = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        this.input.bind(UnixDomainSocketAddress.of(inputSocket));
        this.inputPath = inputSocket;
        OutputStream log = Files.newOutputStream(consoleLog, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        Thread.ofPlatform().daemon().name("veggur-console-out").start(() -> copyOut(log));
        Thread.ofPlatform().daemon().name("veggur-console-in").start(this::acceptInput);
    }

    private void copyOut(OutputStream log) {
        try (log) {
            ByteBuffer buffer = ByteBuffer.allocate(8192);
            while (serial.read(buffer) >= 0) {
                log.write(buffer.array(), 0, buffer.position());
                log.flush();
                buffer.clear();
            }
        } catch (IOException e) {
            if (serial.isOpen()) {
                LOG.log(Level.WARNING, "console output stopped: " + e.getMessage());
            }
        }
    }

    private void acceptInput() {
        while (input.isOpen()) {
            try (SocketChannel client = input.accept()) {
                ByteBuffer buffer = ByteBuffer.allocate(4096);
                while (client.read(buffer) >= 0) {
                    buffer.flip();
                    synchronized (serial) {
                        while (buffer.hasRemaining()) {
                            serial.write(buffer);
                        }
                    }
                    buffer.clear();
                }
            } catch (IOException e) {
                if (input.isOpen()) {
                    LOG.log(Level.WARNING, "console input failed: " + e.getMessage());
                }
            }
        }
    }

    @Override
    public void close() throws IOException {
        input.close();
        serial.close();
        Files.deleteIfExists(inputPath);
    }
}
