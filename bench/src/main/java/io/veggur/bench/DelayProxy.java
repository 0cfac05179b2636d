package io.veggur.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Arrays;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A TCP forwarder that delays every chunk it forwards, in each direction, by a fixed time: the network latency between
 * two machines, emulated in process because these hosts have no {@code sch_netem}. It is a delay line, not a rate
 * limit: a chunk read at time t is written at t + delay, whatever else is in flight, and order is kept. The end of a
 * stream (FIN) is delayed like data.
 *
 * <pre>
 *   DelayProxy LISTEN_PORT TARGET_HOST:PORT DELAY_MICROS      forward 127.0.0.1:LISTEN_PORT (0: any) to the target
 *   DelayProxy --ping TARGET_HOST:PORT DELAY_MICROS COUNT     TCP round trips of one byte to an echo server at the
 *                                                             target, directly and through an in-process delay line
 * </pre>
 * The forwarder prints {@code listening 127.0.0.1:PORT} once it accepts connections, and after each connection ends
 * the cumulative hold times (read to write, per chunk) it achieved, so a report can say what delay was really added.
 * Run it with {@code ip netns exec NS java -cp benchmarks.jar io.veggur.bench.DelayProxy ...} inside the client's
 * namespace: the target then sees the namespace's address as the client's. Only the JDK is used.
 */
public final class DelayProxy implements AutoCloseable {
    private static final int CHUNK = 64 << 10;
    /** PR_SET_TIMERSLACK: the default 50 µs of slack would add itself to every delay. */
    private static final int PR_SET_TIMERSLACK = 29;

    private final ServerSocket server;
    private final InetSocketAddress target;
    private final long delayNanos;
    private final Holds holds = new Holds();
    private final AtomicInteger connections = new AtomicInteger();

    private DelayProxy(ServerSocket server, InetSocketAddress target, long delayNanos) {
        this.server = server;
        this.target = target;
        this.delayNanos = delayNanos;
    }

    /** Listens on 127.0.0.1:{@code port} (0: any free port) and forwards from a daemon thread. */
    static DelayProxy start(int port, InetSocketAddress target, long delayMicros) throws IOException {
        ServerSocket server = new ServerSocket();
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
        DelayProxy proxy = new DelayProxy(server, target, delayMicros * 1000);
        Thread.ofPlatform().daemon().name("delayproxy-accept").start(proxy::accept);
        return proxy;
    }

    int port() {
        return server.getLocalPort();
    }

    public static void main(String[] args) throws Exception {
        if (args.length == 4 && args[0].equals("--ping")) {
            ping(address(args[1]), Long.parseLong(args[2]), Integer.parseInt(args[3]));
            return;
        }
        if (args.length != 3) {
            System.err.println("usage: DelayProxy LISTEN_PORT TARGET_HOST:PORT DELAY_MICROS\n"
                    + "       DelayProxy --ping TARGET_HOST:PORT DELAY_MICROS COUNT");
            System.exit(2);
        }
        long delay = Long.parseLong(args[2]);
        if (delay < 0) {
            throw new IllegalArgumentException("the delay must be 0 or more microseconds");
        }
        DelayProxy proxy = start(Integer.parseInt(args[0]), address(args[1]), delay);
        System.out.println("listening 127.0.0.1:" + proxy.port());
        System.out.flush();
        Thread.currentThread().join();   // until killed
    }

    private static InetSocketAddress address(String hostPort) {
        int colon = hostPort.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException("give the target as HOST:PORT, not '" + hostPort + "'");
        }
        return new InetSocketAddress(hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    }

    private void accept() {
        while (!server.isClosed()) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return;   // closed
            }
            Thread.ofPlatform().daemon().name("delayproxy-connect").start(() -> forward(client));
        }
    }

    private void forward(Socket client) {
        Socket upstream = new Socket();
        try {
            client.setTcpNoDelay(true);
            upstream.setTcpNoDelay(true);
            upstream.connect(target, 10_000);
        } catch (IOException e) {
            System.err.println("delayproxy: cannot reach " + target + ": " + e.getMessage());
            closeQuietly(client);
            closeQuietly(upstream);
            return;
        }
        connections.incrementAndGet();
        Thread up = pump(client, upstream, "up");
        Thread down = pump(upstream, client, "down");
        try {
            up.join();
            down.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        closeQuietly(client);
        closeQuietly(upstream);
        System.out.println(holds.summary(connections.get(), delayNanos / 1000));
        System.out.flush();
    }

    /** {@code bytes} null: the end of the stream. {@code read}: when it arrived (System.nanoTime). */
    private record Chunk(byte[] bytes, long read) {}

    /**
     * One direction: a reader that stamps each chunk as it arrives and a writer that releases it at its due time. Two
     * threads, so a chunk waiting out its delay never holds up reading the next one.
     */
    private Thread pump(Socket from, Socket to, String name) {
        BlockingQueue<Chunk> line = new LinkedBlockingQueue<>();
        Thread writer = Thread.ofPlatform().daemon().name("delayproxy-" + name + "-write").start(() -> {
            reduceTimerSlack();
            try {
                OutputStream out = to.getOutputStream();
                while (true) {
                    Chunk chunk = line.take();
                    long due = chunk.read() + delayNanos;
                    long wait;
                    while ((wait = due - System.nanoTime()) > 0) {
                        LockSupport.parkNanos(wait);
                    }
                    if (chunk.bytes() == null) {
                        to.shutdownOutput();
                        return;
                    }
                    out.write(chunk.bytes());
                    holds.add(System.nanoTime() - chunk.read());
                }
            } catch (IOException e) {
                closeQuietly(from);
                closeQuietly(to);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        Thread.ofPlatform().daemon().name("delayproxy-" + name + "-read").start(() -> {
            byte[] buffer = new byte[CHUNK];
            try {
                InputStream in = from.getInputStream();
                int n;
                while ((n = in.read(buffer)) > 0) {
                    line.add(new Chunk(Arrays.copyOf(buffer, n), System.nanoTime()));
                }
            } catch (IOException e) {
                // reset or closed: end this direction as if by FIN
            }
            line.add(new Chunk(null, System.nanoTime()));
        });
        return writer;
    }

    @Override
    public void close() throws IOException {
        server.close();
    }

    private static void closeQuietly(Socket socket) {
        try {
            socket.close();
        } catch (IOException e) {
            // already gone
        }
    }

    /** Timer slack is per thread; best effort (without it parks end up to 50 µs late, which the summary shows). */
    private static void reduceTimerSlack() {
        try {
            Linker linker = Linker.nativeLinker();
            MethodHandle prctl = linker.downcallHandle(linker.defaultLookup().find("prctl").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG),
                    Linker.Option.firstVariadicArg(1));
            int ignored = (int) prctl.invokeExact(PR_SET_TIMERSLACK, 1L);
        } catch (Throwable e) {
            // no native access: keep the default slack
        }
    }

    /** Hold times of every chunk forwarded, in ns (a few hundred thousand at most in a benchmark run). */
    private static final class Holds {
        private long[] values = new long[1024];
        private int size;

        synchronized void add(long nanos) {
            if (size == values.length) {
                values = Arrays.copyOf(values, size * 2);
            }
            values[size++] = nanos;
        }

        synchronized String summary(int connections, long delayMicros) {
            long[] sorted = Arrays.copyOf(values, size);
            Arrays.sort(sorted);
            if (size == 0) {
                return "held connections=" + connections + " chunks=0 delay=" + delayMicros;
            }
            return String.format("held connections=%d chunks=%d delay=%d median=%.1f p90=%.1f p99=%.1f", connections,
                    size, delayMicros, sorted[size / 2] / 1e3, sorted[(int) (size * 9L / 10)] / 1e3,
                    sorted[(int) Math.min(size - 1, size * 99L / 100)] / 1e3);
        }
    }

    // ---- --ping: what the delay line adds to a round trip

    private static void ping(InetSocketAddress echo, long delayMicros, int count) throws Exception {
        try (DelayProxy proxy = start(0, echo, delayMicros)) {
            double direct = roundTrips(echo, count);
            double delayed = roundTrips(new InetSocketAddress(InetAddress.getLoopbackAddress(), proxy.port()), count);
            System.out.printf("ping count=%d direct=%.1f delayed=%.1f%n", count, direct, delayed);
        }
    }

    /** Median µs of {@code count} one-byte round trips to an echo server, after as many unmeasured ones. */
    private static double roundTrips(InetSocketAddress echo, int count) throws IOException {
        try (Socket socket = new Socket()) {
            socket.setTcpNoDelay(true);
            socket.connect(echo, 10_000);
            socket.setSoTimeout(10_000);
            OutputStream out = socket.getOutputStream();
            InputStream in = socket.getInputStream();
            long[] nanos = new long[count];
            for (int i = -count; i < count; i++) {
                long start = System.nanoTime();
                out.write(i & 0x7f);
                if (in.read() < 0) {
                    throw new IOException("the echo server at " + echo + " closed the connection");
                }
                if (i >= 0) {
                    nanos[i] = System.nanoTime() - start;
                }
            }
            Arrays.sort(nanos);
            return nanos[count / 2] / 1e3;
        }
    }

    /** The other end of {@code --ping}: echoes every byte, one thread per connection, until closed. */
    static final class Echo implements AutoCloseable {
        private final ServerSocket server;

        Echo(InetAddress address) throws IOException {
            server = new ServerSocket();
            server.bind(new InetSocketAddress(address, 0));
            Thread.ofPlatform().daemon().name("echo-accept").start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket socket = server.accept();
                        socket.setTcpNoDelay(true);
                        Thread.ofPlatform().daemon().name("echo").start(() -> echo(socket));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        int port() {
            return server.getLocalPort();
        }

        private static void echo(Socket socket) {
            try (socket) {
                InputStream in = socket.getInputStream();
                OutputStream out = socket.getOutputStream();
                byte[] buffer = new byte[4096];
                int n;
                while ((n = in.read(buffer)) > 0) {
                    out.write(buffer, 0, n);
                }
            } catch (IOException e) {
                // the client went away
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
        }
    }
}
