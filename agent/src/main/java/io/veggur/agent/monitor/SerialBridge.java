package io.veggur.agent.monitor;

import io.veggur.protocol.link.LinkFormatException;
import io.veggur.protocol.link.LinkFrame;
import io.veggur.protocol.link.LinkReader;
import io.veggur.protocol.link.LinkType;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * The host end of a monitoring VM's serial link (docs/protocol.md, "Serial link"): the one client of QEMU's chardev
 * socket for the VM's {@code io.veggur.vmi} port, it turns each OPEN from the guest into a fresh connection to the
 * monitored VM's introspection socket and relays DATA both ways. Everything from the port is hostile (the tenant is
 * root in the monitor).
 *
 * <p>Invariants:
 * <ul>
 *   <li>It connects to exactly two sockets, both fixed at {@link #start}; nothing from the guest names an address.
 *   <li>At most one upstream session at a time. A session ends on CLOSE, on a new OPEN, on a malformed frame (the
 *       bridge then skips to the next OPEN), when the upstream ends, or when no frame arrived for
 *       {@link #IDLE_TIMEOUT} while the bridge was not itself blocked on the upstream: a guest process killed with
 *       SIGKILL sends nothing, and its upstream (with its breakpoints and pause) must not outlive it by more than
 *       that. The guest sends KEEPALIVE every 250 ms, so 1.5 s is six missed keepalives: long enough for a stalled
 *       TCG guest or a GC pause, short enough to release a dead client's hold on the monitored VM within 2 s.
 *   <li>Bounded memory: one maximal frame of input buffer, {@link #OUTBOX_DATA_FRAMES} queued DATA frames towards the
 *       guest plus at most three control frames; beyond that the upstream simply is not read (and a guest that floods
 *       DATA waits on the upstream's own back-pressure).
 *   <li>Host-to-guest frames of a session are written only while it is the newest one, so a guest that just opened
 *       never receives an older session's bytes after its OPENED.
 *   <li>Reasons sent to the guest in CLOSED are fixed phrases; the detailed, host-side reasons go to the listener.
 * </ul>
 *
 * <p>Threads (virtual: all blocking is on JDK UNIX socket channels): the link thread (connects to the chardev,
 * reads frames, writes to the upstream), one writer per chardev connection, one relay per session (upstream to
 * guest) and a watchdog for the timeouts.
 */
public final class SerialBridge implements AutoCloseable {
    /** Silence after which a session is presumed dead (see the class comment). */
    static final Duration IDLE_TIMEOUT = Duration.ofMillis(1500);
    /** How long one upstream connect or write may block before the session is ended. */
    static final Duration STALL_TIMEOUT = Duration.ofSeconds(10);
    /**
     * Least time between two upstream connections: every OPEN costs the introspection server a connection and a
     * thread, and a guest looping on OPEN must not churn them faster than 50 per second.
     */
    static final Duration OPEN_SPACING = Duration.ofMillis(20);
    static final int OUTBOX_DATA_FRAMES = 8;
    private static final long WATCHDOG_TICK_MILLIS = 100;
    private static final long MIN_BACKOFF_MILLIS = 50;
    private static final long MAX_BACKOFF_MILLIS = 1000;
    /** A chardev connection that lasted this long resets the reconnect backoff. */
    private static final long STABLE_CONNECTION_MILLIS = 1000;
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

    /** What the bridge reports; delivered synchronously from its threads, so a listener must be quick. */
    public sealed interface Event {
        /** The chardev socket accepted the bridge. */
        record PortConnected() implements Event {}

        /** The chardev connection ended or could not be made (reported once until the next success). */
        record PortDisconnected(String reason) implements Event {}

        record SessionOpened(long session) implements Event {}

        /** An open session ended; {@code reason} is for the host's log. */
        record SessionClosed(long session, String reason) implements Event {}

        /** An OPEN could not be served (the introspection socket did not accept a connection). */
        record SessionRefused(long session, String reason) implements Event {}

        /** Bytes from the guest that are not a well-formed frame; the bridge skipped to the next OPEN. */
        record ProtocolViolation(String problem) implements Event {}
    }

    private final Path portSocket;
    private final Path introspectionSocket;
    private final Consumer<Event> events;
    /** Guards {@link #closed} and {@link #port}, and is what pauses wait on. */
    private final Object lock = new Object();
    private volatile boolean closed;
    private SocketChannel port;
    /** The newest session, ended or not; null between chardev connections. */
    private volatile Session session;
    /** Id of the newest session; link thread only. */
    private long sessionCount;
    private long lastOpenNanos = System.nanoTime() - OPEN_SPACING.toNanos();
    private final Thread linkThread;
    private final Thread watchdog;

    private SerialBridge(Path portSocket, Path introspectionSocket, Consumer<Event> events) {
        this.portSocket = portSocket;
        this.introspectionSocket = introspectionSocket;
        this.events = events;
        linkThread = Thread.ofVirtual().name("veggur-serial-link").unstarted(this::linkLoop);
        watchdog = Thread.ofVirtual().name("veggur-serial-watchdog").unstarted(this::watch);
    }

    /**
     * Starts serving: connects to QEMU's chardev socket {@code portSocket} (retrying with a backoff of 50 ms up to
     * 1 s while it is missing or refuses, and again whenever the connection drops) and opens a connection to
     * {@code introspectionSocket} per guest session.
     */
    public static SerialBridge start(Path portSocket, Path introspectionSocket, Consumer<Event> events) {
        SerialBridge bridge = new SerialBridge(portSocket, introspectionSocket, events);
        bridge.linkThread.start();
        bridge.watchdog.start();
        return bridge;
    }

    /** Ends the chardev connection and any session, and returns once every thread of the bridge has finished. */
    @Override
    public void close() {
        SocketChannel current;
        synchronized (lock) {
            closed = true;
            current = port;
            lock.notifyAll();
        }
        // The session first (the link thread may be blocked on its upstream rather than on the port), so it ends
        // for the reason that is true.
        Session newest = session;
        if (newest != null) {
            newest.end("the bridge stopped", null);
        }
        closeQuietly(current);
        join(linkThread);
        join(watchdog);
    }

    private void linkLoop() {
        long backoff = MIN_BACKOFF_MILLIS;
        boolean failureReported = false;
        while (!closed) {
            SocketChannel channel = null;
            try {
                channel = SocketChannel.open(StandardProtocolFamily.UNIX);
                channel.connect(UnixDomainSocketAddress.of(portSocket));
            } catch (IOException e) {
                closeQuietly(channel);
                if (!failureReported) {
                    emit(new Event.PortDisconnected("cannot connect to the port socket: " + e.getMessage()));
                    failureReported = true;
                }
                if (!pause(backoff)) {
                    return;
                }
                backoff = Math.min(backoff * 2, MAX_BACKOFF_MILLIS);
                continue;
            }
            synchronized (lock) {
                if (closed) {
                    closeQuietly(channel);
                    return;
                }
                port = channel;
            }
            failureReported = false;
            emit(new Event.PortConnected());
            long started = System.nanoTime();
            emit(new Event.PortDisconnected(serve(channel)));
            if (System.nanoTime() - started >= TimeUnit.MILLISECONDS.toNanos(STABLE_CONNECTION_MILLIS)) {
                backoff = MIN_BACKOFF_MILLIS;
            }
            // QEMU may accept and drop at once (a second client, a dying VM): never reconnect in a tight loop.
            if (!pause(backoff)) {
                return;
            }
            backoff = Math.min(backoff * 2, MAX_BACKOFF_MILLIS);
        }
    }

    /** Serves one chardev connection until it ends; returns why it ended. */
    private String serve(SocketChannel channel) {
        Outbox outbox = new Outbox(sessionCount);
        Thread writer = Thread.ofVirtual().name("veggur-serial-writer").start(() -> writeLoop(channel, outbox));
        List<Thread> relays = new ArrayList<>();
        try {
            return readLoop(new LinkReader(channel, LinkType.Sender.GUEST), outbox, relays);
        } finally {
            Session newest = session;
            if (newest != null) {
                newest.end("the port connection ended", null);
            }
            session = null;
            outbox.close();
            closeQuietly(channel);
            synchronized (lock) {
                port = null;
            }
            join(writer);
            relays.forEach(SerialBridge::join);
        }
    }

    private String readLoop(LinkReader frames, Outbox outbox, List<Thread> relays) {
        boolean scanning = false;
        boolean noSessionNotified = false;
        try {
            while (!closed) {
                LinkFrame frame;
                try {
                    frame = scanning ? frames.skipToOpen() : frames.next();
                } catch (LinkFormatException e) {
                    emit(new Event.ProtocolViolation(e.getMessage()));
                    Session current = session;
                    if (current != null) {
                        current.end("protocol violation: " + e.getMessage(), "protocol violation: " + e.getMessage());
                    }
                    scanning = true;
                    continue;
                }
                if (frame == null) {
                    return "the port socket closed";
                }
                scanning = false;
                Session current = session;
                boolean live = current != null && !current.ended;
                if (live) {
                    current.touch();
                }
                switch (frame.type()) {
                    case OPEN -> {
                        relays.removeIf(relay -> !relay.isAlive());
                        open(frame.nonce(), outbox, relays);
                        noSessionNotified = false;
                    }
                    case DATA -> {
                        if (live) {
                            forward(current, frame.payload());
                        }
                    }
                    case CLOSE -> {
                        if (live) {
                            current.end("closed by the guest", null);
                        }
                    }
                    case KEEPALIVE -> {
                        // Liveness only, counted above.
                    }
                    default -> throw new IllegalStateException("the reader let a host frame through: " + frame);
                }
                // A guest that still talks to a session the host ended (or to a bridge that restarted) learns it once.
                if (!live && frame.type() != LinkType.OPEN && frame.type() != LinkType.CLOSE && !noSessionNotified) {
                    outbox.control(sessionCount, LinkFrame.closed(null, "no open session").encode());
                    noSessionNotified = true;
                }
            }
            return "the bridge stopped";
        } catch (EOFException e) {
            return "the port socket closed inside a frame";
        } catch (IOException e) {
            return closed ? "the bridge stopped" : "cannot read the port socket: " + e.getMessage();
        }
    }

    /** Replaces the current session with a new one for {@code nonce}. */
    private void open(byte[] nonce, Outbox outbox, List<Thread> relays) {
        Session previous = session;
        if (previous != null) {
            previous.end("replaced by a new session", null);
        }
        long wait = lastOpenNanos + OPEN_SPACING.toNanos() - System.nanoTime();
        if (wait > 0 && !pause(TimeUnit.NANOSECONDS.toMillis(wait) + 1)) {
            return;
        }
        lastOpenNanos = System.nanoTime();
        long id = ++sessionCount;
        outbox.begin(id);
        Session current = new Session(id, nonce, outbox);
        session = current;
        if (closed) {
            current.end("the bridge stopped", null);
            return;
        }
        current.busySince = System.nanoTime();
        try {
            SocketChannel upstream = SocketChannel.open(StandardProtocolFamily.UNIX);
            if (!current.attach(upstream)) {
                return;
            }
            upstream.connect(UnixDomainSocketAddress.of(introspectionSocket));
        } catch (IOException e) {
            if (current.refuse("cannot connect to the introspection socket: " + e.getMessage())) {
                outbox.control(id, LinkFrame.closed(nonce, "the introspection socket is not available").encode());
            }
            return;
        } finally {
            // In this order, so the watchdog never sees "not busy" with the time before the connect.
            current.touch();
            current.busySince = 0;
        }
        current.opened = true;
        outbox.control(id, LinkFrame.opened(nonce).encode());
        emit(new Event.SessionOpened(id));
        relays.add(Thread.ofVirtual().name("veggur-serial-relay-" + id).start(() -> relay(current, outbox)));
    }

    /** Writes a DATA payload to the session's upstream; the watchdog bounds how long that may block. */
    private void forward(Session current, byte[] payload) {
        current.busySince = System.nanoTime();
        try {
            ByteBuffer bytes = ByteBuffer.wrap(payload);
            while (bytes.hasRemaining()) {
                current.upstream.write(bytes);
            }
        } catch (IOException e) {
            current.end("cannot write to the introspection socket: " + e.getMessage(),
                    "the introspection connection failed");
        } finally {
            current.touch();
            current.busySince = 0;
        }
    }

    /** Upstream to guest for one session; the only writer of its DATA and CLOSED, so CLOSED comes last. */
    private void relay(Session current, Outbox outbox) {
        ByteBuffer buffer = ByteBuffer.allocate(LinkFrame.MAX_DATA);
        String hostReason = "the introspection server closed the connection";
        String guestReason = hostReason;
        try {
            while (current.upstream.read(buffer.clear()) >= 0) {
                byte[] bytes = new byte[buffer.flip().remaining()];
                buffer.get(bytes);
                if (!outbox.data(current, new LinkFrame(LinkType.DATA, bytes).encode())) {
                    break;
                }
            }
        } catch (IOException e) {
            hostReason = "cannot read the introspection socket: " + e.getMessage();
            guestReason = "the introspection connection failed";
        }
        current.end(hostReason, guestReason);
        String toGuest = current.guestReason;
        if (toGuest != null) {
            outbox.control(current.id, LinkFrame.closed(current.nonce, toGuest).encode());
        }
    }

    private static void writeLoop(SocketChannel channel, Outbox outbox) {
        try {
            for (ByteBuffer frame = outbox.take(); frame != null; frame = outbox.take()) {
                while (frame.hasRemaining()) {
                    channel.write(frame);
                }
            }
        } catch (IOException e) {
            // The port connection is gone; make sure the link thread sees it too.
            closeQuietly(channel);
        }
    }

    private void watch() {
        long idle = IDLE_TIMEOUT.toNanos();
        long stall = STALL_TIMEOUT.toNanos();
        while (pause(WATCHDOG_TICK_MILLIS)) {
            Session current = session;
            if (current == null || current.ended) {
                continue;
            }
            long now = System.nanoTime();
            long busySince = current.busySince;
            if (busySince != 0 && now - busySince > stall) {
                current.end("the introspection socket blocked for " + STALL_TIMEOUT.toSeconds() + " s",
                        "the introspection server is not responding");
            } else if (busySince == 0 && now - current.lastFrame > idle) {
                String silence = "no frame from the guest for " + IDLE_TIMEOUT.toMillis() + " ms";
                current.end(silence, silence);
            }
        }
    }

    /** Waits up to {@code millis} unless the bridge closes; false once it is closed. */
    private boolean pause(long millis) {
        synchronized (lock) {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
            try {
                for (long left = millis; !closed && left > 0; left = TimeUnit.NANOSECONDS.toMillis(
                        deadline - System.nanoTime())) {
                    lock.wait(left);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
            return !closed;
        }
    }

    private void emit(Event event) {
        try {
            events.accept(event);
        } catch (RuntimeException e) {
            // A listener's failure must not take the link down.
        }
    }

    private static void join(Thread thread) {
        try {
            if (!thread.join(STOP_TIMEOUT)) {
                throw new IllegalStateException(thread.getName() + " did not stop within " + STOP_TIMEOUT.toSeconds()
                        + " s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void closeQuietly(SocketChannel channel) {
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // closing for good: nothing to do about a failure
            }
        }
    }

    /** One guest session and its upstream connection. Ends exactly once, from whichever thread sees the end first. */
    private final class Session {
        final long id;
        final byte[] nonce;
        final Outbox outbox;
        volatile SocketChannel upstream;
        volatile long lastFrame = System.nanoTime();
        /** When the link thread started blocking on the upstream (connect or write); 0 when it is not. */
        volatile long busySince;
        volatile boolean opened;
        volatile boolean ended;
        /** What CLOSED tells the guest; null when the guest is not told (it asked, or a new session replaced it). */
        volatile String guestReason;

        Session(long id, byte[] nonce, Outbox outbox) {
            this.id = id;
            this.nonce = nonce;
            this.outbox = outbox;
        }

        void touch() {
            lastFrame = System.nanoTime();
        }

        /** Sets the upstream; false (and the channel closed) if the session ended meanwhile. */
        boolean attach(SocketChannel channel) {
            synchronized (this) {
                if (!ended) {
                    upstream = channel;
                    return true;
                }
            }
            closeQuietly(channel);
            return false;
        }

        void end(String hostReason, String toGuest) {
            SocketChannel channel;
            synchronized (this) {
                if (ended) {
                    return;
                }
                guestReason = toGuest;
                ended = true;
                channel = upstream;
            }
            closeQuietly(channel);
            outbox.wake();
            if (opened) {
                emit(new Event.SessionClosed(id, hostReason));
            }
        }

        /** Ends a session whose upstream could not be connected; false if something else ended it first. */
        boolean refuse(String hostReason) {
            synchronized (this) {
                if (ended) {
                    return false;
                }
                ended = true;
            }
            closeQuietly(upstream);
            emit(new Event.SessionRefused(id, hostReason));
            return true;
        }
    }

    /**
     * Frames towards the guest, for the writer. DATA is bounded ({@link #OUTBOX_DATA_FRAMES}); control frames are
     * bounded by construction: per session id at most OPENED, one CLOSED and one "no open session".
     */
    private static final class Outbox {
        private record Item(long session, ByteBuffer frame, boolean data) {}

        private final ArrayDeque<Item> items = new ArrayDeque<>();
        private int dataFrames;
        private long current;
        private boolean closed;

        /** {@code newest}: the id of the newest session so far, which a "no open session" CLOSED is filed under. */
        Outbox(long newest) {
            current = newest;
        }

        /** From now on only session {@code id}'s frames are written; older ones still queued are dropped. */
        synchronized void begin(long id) {
            current = id;
            items.removeIf(item -> item.session != id);
            dataFrames = (int) items.stream().filter(Item::data).count();
            notifyAll();
        }

        /** Queues a DATA frame, waiting for room; false if the session ended or is no longer the newest. */
        synchronized boolean data(Session session, ByteBuffer frame) {
            try {
                while (!closed && session.id == current && !session.ended && dataFrames >= OUTBOX_DATA_FRAMES) {
                    wait();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
            if (closed || session.id != current || session.ended) {
                return false;
            }
            items.add(new Item(session.id, frame, true));
            dataFrames++;
            notifyAll();
            return true;
        }

        synchronized void control(long id, ByteBuffer frame) {
            if (!closed && id == current) {
                items.add(new Item(id, frame, false));
                notifyAll();
            }
        }

        /** The next frame; null once closed. */
        synchronized ByteBuffer take() {
            try {
                while (!closed && items.isEmpty()) {
                    wait();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
            if (closed) {
                return null;
            }
            Item item = items.poll();
            if (item.data) {
                dataFrames--;
            }
            notifyAll();
            return item.frame;
        }

        synchronized void wake() {
            notifyAll();
        }

        synchronized void close() {
            closed = true;
            items.clear();
            notifyAll();
        }
    }
}
