package io.veggur.protocol.link;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The guest end of the link against a host played by the test over a UNIX socket pair. */
@Timeout(30)
class LinkClientTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(5);

    @TempDir
    Path directory;
    private SocketChannel guest;
    private SocketChannel host;
    private LinkReader fromGuest;

    @BeforeEach
    void connect() throws IOException {
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(directory.resolve("pair.sock")));
            guest = SocketChannel.open(server.getLocalAddress());
            host = server.accept();
        }
        fromGuest = new LinkReader(host, LinkType.Sender.GUEST);
    }

    @AfterEach
    void close() throws IOException {
        guest.close();
        host.close();
    }

    @Test
    void open_skipsStaleBytesUpToTheAnswerForItsNonce() throws Exception {
        Thread.ofVirtual().start(() -> answer(open -> {
            byte[] stale = LinkFrameTest.concat(List.of(LinkFrame.data(new byte[500], 0, 500),
                    LinkFrame.opened(LinkFrameTest.nonce(9)), LinkFrame.closed(null, "no open session")));
            send(ByteBuffer.wrap(stale, 200, stale.length - 200));
            send(LinkFrame.opened(open.nonce()).encode());
            send(LinkFrame.data("hello".getBytes(), 0, 5).encode());
        }));

        try (LinkClient client = LinkClient.open("test port", guest, guest, TIMEOUT)) {
            assertThat(client.input().readNBytes(5)).isEqualTo("hello".getBytes());
        }
    }

    @Test
    void output_isCutIntoDataFramesAndSentOnFlush() throws Exception {
        Thread.ofVirtual().start(() -> answer(open -> send(LinkFrame.opened(open.nonce()).encode())));
        byte[] bytes = new byte[40_000];
        new Random(1).nextBytes(bytes);

        try (LinkClient client = LinkClient.open("test port", guest, guest, TIMEOUT)) {
            client.output().write(bytes);
            client.output().flush();

            ByteBuffer received = ByteBuffer.allocate(bytes.length);
            List<Integer> sizes = new ArrayList<>();
            while (received.hasRemaining()) {
                LinkFrame frame = fromGuest.next();
                if (frame.type() == LinkType.DATA) {
                    received.put(frame.payload());
                    sizes.add(frame.payload().length);
                }
            }
            assertThat(received.array()).isEqualTo(bytes);
            assertThat(sizes).containsExactly(LinkFrame.MAX_DATA, LinkFrame.MAX_DATA, 40_000 - 2 * LinkFrame.MAX_DATA);
        }
    }

    @Test
    void idleSession_sendsKeepalives_andCloseSendsClose() throws Exception {
        Thread.ofVirtual().start(() -> answer(open -> send(LinkFrame.opened(open.nonce()).encode())));
        LinkClient client = LinkClient.open("test port", guest, guest, TIMEOUT);
        long start = System.nanoTime();

        assertThat(fromGuest.next()).isEqualTo(LinkFrame.keepalive());
        assertThat(fromGuest.next()).isEqualTo(LinkFrame.keepalive());
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        client.close();

        assertThat(millis).isBetween(400L, 1500L);
        LinkFrame frame = fromGuest.next();
        while (frame.type() == LinkType.KEEPALIVE) {
            frame = fromGuest.next();
        }
        assertThat(frame).isEqualTo(LinkFrame.close());
        assertThat(fromGuest.next()).isNull();
    }

    @Test
    void hostClosesTheSession_dataBeforeItIsReadThenTheReason() throws Exception {
        Thread.ofVirtual().start(() -> answer(open -> {
            send(LinkFrame.opened(open.nonce()).encode());
            send(LinkFrame.data(new byte[] {1, 2}, 0, 2).encode());
            send(LinkFrame.closed(open.nonce(), "the introspection server closed the connection").encode());
        }));

        try (LinkClient client = LinkClient.open("test port", guest, guest, TIMEOUT)) {
            assertThat(client.input().readNBytes(2)).containsExactly(1, 2);
            assertThatThrownBy(() -> client.input().read()).isInstanceOf(IOException.class).hasMessage(
                    "test port: the host closed the session: the introspection server closed the connection");
        }
    }

    @Test
    void hostRefuses_openFailsWithItsReason() {
        Thread.ofVirtual().start(() -> answer(open ->
                send(LinkFrame.closed(open.nonce(), "the introspection socket is not available").encode())));

        assertThatThrownBy(() -> LinkClient.open("test port", guest, guest, TIMEOUT)).isInstanceOf(IOException.class)
                .hasMessage("test port: the host refused the session: the introspection socket is not available");
        assertThat(guest.isOpen()).isFalse();
    }

    @Test
    void hostSilent_openFailsAfterTheTimeout() {
        long start = System.nanoTime();

        assertThatThrownBy(() -> LinkClient.open("test port", guest, guest, Duration.ofMillis(300)))
                .isInstanceOf(IOException.class)
                .hasMessage("no answer on test port: no reply to the open request within 300 ms");
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isBetween(300L, 2500L);
    }

    @Test
    void hostNotConnected_openFailsAtOnce() throws IOException {
        // A virtio-serial port reads as ended while nothing is connected on the host side.
        host.shutdownOutput();

        assertThatThrownBy(() -> LinkClient.open("test port", guest, guest, TIMEOUT)).isInstanceOf(IOException.class)
                .hasMessage("no answer on test port: the host side is not connected");
    }

    @Test
    void writesBlocked_openTimesOutAndCloseStillReturns() {
        // QEMU blocks a port's writes while nobody is connected on the host; closing must end the blocked write.
        BlockingChannel blocked = new BlockingChannel();
        long start = System.nanoTime();

        assertThatThrownBy(() -> LinkClient.open("test port", guest, blocked, Duration.ofMillis(300)))
                .isInstanceOf(IOException.class).hasMessage("no answer on test port: the host side did not take the "
                        + "open request within 300 ms (is the host side connected?)");
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(3000);
        assertThat(blocked.isOpen()).isFalse();
    }

    @Test
    void unreadFlood_isHeldToABoundedBuffer() throws Exception {
        CountDownLatch opened = new CountDownLatch(1);
        Thread.ofVirtual().start(() -> answer(open -> {
            send(LinkFrame.opened(open.nonce()).encode());
            opened.countDown();
        }));
        try (LinkClient client = LinkClient.open("test port", guest, guest, TIMEOUT)) {
            opened.await();
            host.configureBlocking(false);
            ByteBuffer frame = LinkFrame.data(new byte[LinkFrame.MAX_DATA], 0, LinkFrame.MAX_DATA).encode();
            long written = 0;
            long quietSince = System.nanoTime();
            while (System.nanoTime() - quietSince < TimeUnit.MILLISECONDS.toNanos(500)) {
                int n = host.write(frame);
                if (n > 0) {
                    written += n;
                    quietSince = System.nanoTime();
                } else {
                    Thread.sleep(10);
                }
                if (!frame.hasRemaining()) {
                    frame.rewind();
                }
            }

            // The client's share is its inbox and one frame in the reader; the rest is the kernel's socket buffers.
            assertThat(written).isLessThan(LinkClient.INBOX_BYTES + 4L * 1024 * 1024);
            assertThat(client.input().available()).isBetween(LinkClient.INBOX_BYTES,
                    LinkClient.INBOX_BYTES + LinkFrame.MAX_DATA);
        }
    }

    /** Reads the guest's OPEN and lets {@code reply} answer it. */
    private void answer(Reply reply) {
        try {
            LinkFrame open = fromGuest.next();
            assertThat(open.type()).isEqualTo(LinkType.OPEN);
            reply.to(open);
        } catch (IOException e) {
            // The test ended.
        }
    }

    private void send(ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            host.write(bytes);
        }
    }

    private interface Reply {
        void to(LinkFrame open) throws IOException;
    }

    /** A channel whose writes block until it is closed, as a port's do while the host side is not connected. */
    private static final class BlockingChannel implements WritableByteChannel {
        private final CountDownLatch closed = new CountDownLatch(1);

        @Override
        public int write(ByteBuffer src) throws IOException {
            try {
                closed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            throw new IOException("closed while writing");
        }

        @Override
        public boolean isOpen() {
            return closed.getCount() > 0;
        }

        @Override
        public void close() {
            closed.countDown();
        }
    }
}
