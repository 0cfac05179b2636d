package io.veggur.vmi.transport;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.Map;

/**
 * The few libc socket calls the vsock transport needs, through the Foreign Function & Memory API (the JDK has no
 * AF_VSOCK). Every call returns libc's result; a negative one comes with {@code errno} in {@link Result#errno}, taken
 * by the linker right after the call, so nothing in between can overwrite it.
 */
final class Libc {
    static final int AF_VSOCK = 40;
    static final int SOCK_STREAM = 1;
    static final int SOCK_CLOEXEC = 0x80000;
    static final int SHUT_RDWR = 2;
    /** A peer that went away gives EPIPE rather than a SIGPIPE to the process. */
    static final int MSG_NOSIGNAL = 0x4000;
    static final int EINTR = 4;
    static final int EAFNOSUPPORT = 97;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
    private static final ValueLayout PTR = ValueLayout.ADDRESS;

    private static final MethodHandle SOCKET = errnoCall("socket", FunctionDescriptor.of(INT, INT, INT, INT));
    private static final MethodHandle CONNECT = errnoCall("connect", FunctionDescriptor.of(INT, INT, PTR, INT));
    private static final MethodHandle BIND = errnoCall("bind", FunctionDescriptor.of(INT, INT, PTR, INT));
    private static final MethodHandle LISTEN = errnoCall("listen", FunctionDescriptor.of(INT, INT, INT));
    private static final MethodHandle GETSOCKNAME = errnoCall("getsockname", FunctionDescriptor.of(INT, INT, PTR, PTR));
    private static final MethodHandle SETSOCKOPT = errnoCall("setsockopt",
            FunctionDescriptor.of(INT, INT, INT, INT, PTR, INT));
    private static final MethodHandle READ = errnoCall("read", FunctionDescriptor.of(LONG, INT, PTR, LONG));
    private static final MethodHandle SEND = errnoCall("send", FunctionDescriptor.of(LONG, INT, PTR, LONG, INT));
    private static final MethodHandle SHUTDOWN = errnoCall("shutdown", FunctionDescriptor.of(INT, INT, INT));
    private static final MethodHandle CLOSE = errnoCall("close", FunctionDescriptor.of(INT, INT));
    private static final MethodHandle STRERROR = LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow("strerror"),
            FunctionDescriptor.of(PTR, INT));

    /** Symbolic names of the errors a socket user is most likely to meet, for messages. */
    private static final Map<Integer, String> NAMES = Map.ofEntries(Map.entry(1, "EPERM"), Map.entry(4, "EINTR"),
            Map.entry(9, "EBADF"), Map.entry(13, "EACCES"), Map.entry(19, "ENODEV"), Map.entry(22, "EINVAL"),
            Map.entry(24, "EMFILE"), Map.entry(32, "EPIPE"), Map.entry(97, "EAFNOSUPPORT"),
            Map.entry(98, "EADDRINUSE"), Map.entry(99, "EADDRNOTAVAIL"), Map.entry(101, "ENETUNREACH"),
            Map.entry(104, "ECONNRESET"), Map.entry(107, "ENOTCONN"), Map.entry(110, "ETIMEDOUT"),
            Map.entry(111, "ECONNREFUSED"), Map.entry(113, "EHOSTUNREACH"));

    /** A call's return value and, when it is negative, its errno. */
    record Result(long value, int errno) {
        boolean failed() {
            return value < 0;
        }
    }

    private Libc() {}

    static Result socket(int domain, int type, int protocol) {
        return call(SOCKET, domain, type, protocol);
    }

    static Result connect(int fd, MemorySegment address) {
        return call(CONNECT, fd, address, (int) address.byteSize());
    }

    static Result bind(int fd, MemorySegment address) {
        return call(BIND, fd, address, (int) address.byteSize());
    }

    static Result listen(int fd, int backlog) {
        return call(LISTEN, fd, backlog);
    }

    /** Fills {@code address} with the socket's local address. */
    static Result getsockname(int fd, MemorySegment address) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment length = arena.allocateFrom(INT, (int) address.byteSize());
            return call(GETSOCKNAME, fd, address, length);
        }
    }

    static Result setsockopt(int fd, int level, int option, MemorySegment value) {
        return call(SETSOCKOPT, fd, level, option, value, (int) value.byteSize());
    }

    static Result read(int fd, MemorySegment buffer, long count) {
        return call(READ, fd, buffer, count);
    }

    static Result send(int fd, MemorySegment buffer, long count) {
        return call(SEND, fd, buffer, count, MSG_NOSIGNAL);
    }

    static Result shutdown(int fd, int how) {
        return call(SHUTDOWN, fd, how);
    }

    static Result close(int fd) {
        return call(CLOSE, fd);
    }

    /** "Connection refused (ECONNREFUSED)": libc's text and the symbolic name when known. */
    static String describe(int errno) {
        String text;
        try {
            text = ((MemorySegment) STRERROR.invokeExact(errno)).reinterpret(256).getString(0);
        } catch (Throwable e) {
            text = "error";
        }
        return text + " (" + NAMES.getOrDefault(errno, "errno " + errno) + ")";
    }

    private static MethodHandle errnoCall(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LINKER.defaultLookup().findOrThrow(name), descriptor,
                Linker.Option.captureCallState("errno"));
    }

    /** Invokes a handle made by {@link #errnoCall}: the capture segment goes first, then the arguments. */
    private static Result call(MethodHandle handle, Object... arguments) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            Object[] all = new Object[arguments.length + 1];
            all[0] = state;
            System.arraycopy(arguments, 0, all, 1, arguments.length);
            Object returned = handle.invokeWithArguments(all);
            long value = returned instanceof Integer i ? i : (Long) returned;
            return new Result(value, value < 0 ? (int) ERRNO.get(state, 0L) : 0);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("native call failed", e);
        }
    }
}
