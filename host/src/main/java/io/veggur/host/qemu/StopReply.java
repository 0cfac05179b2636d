package io.veggur.host.qemu;

import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A gdbstub stop reply: {@code Sxx} or {@code Txx n1:r1;n2:r2;...}, where {@code xx} is the GDB signal number in hex
 * (QEMU sends 02, SIGINT, when the VM was paused and 05, SIGTRAP, for breakpoints and single steps).
 *
 * @param signal the GDB signal number
 * @param fields the {@code n:r} pairs in wire order, e.g. {@code thread -> p01.02}, {@code swbreak -> ""},
 *               {@code watch -> address}; register numbers appear as hex keys
 * @param vcpuIndex the stopped vCPU as an index into the stub's thread list, if the reply names a known thread
 */
public record StopReply(int signal, Map<String, String> fields, OptionalInt vcpuIndex) {
    /** Signal QEMU reports when the VM was paused by an interrupt, QMP {@code stop} or a new debugger connection. */
    public static final int SIGINT = 2;
    /** Signal QEMU reports for a breakpoint hit or a finished single step. */
    public static final int SIGTRAP = 5;

    public StopReply {
        fields = Collections.unmodifiableMap(new LinkedHashMap<>(fields));
    }

    /** The raw {@code thread} field, e.g. {@code p01.02}. */
    public Optional<String> thread() {
        return Optional.ofNullable(fields.get("thread"));
    }

    /** Whether a payload has the shape of a stop reply: {@code S} or {@code T} followed by two hex digits. */
    static boolean isStopReply(String payload) {
        return startsWithCode(payload, 'S', 'T');
    }

    /** Whether a payload reports that the target exited: {@code W} or {@code X} followed by two hex digits. */
    static boolean isExitReply(String payload) {
        return startsWithCode(payload, 'W', 'X');
    }

    private static boolean startsWithCode(String payload, char kind, char otherKind) {
        return payload.length() >= 3 && (payload.charAt(0) == kind || payload.charAt(0) == otherKind)
                && HexFormat.isHexDigit(payload.charAt(1)) && HexFormat.isHexDigit(payload.charAt(2));
    }

    /** Parses a payload for which {@link #isStopReply} holds; {@code vcpuIndex} is filled in by the caller. */
    static StopReply parse(String payload) throws QemuProtocolException {
        int signal = Integer.parseInt(payload, 1, 3, 16);
        Map<String, String> fields = new LinkedHashMap<>();
        if (payload.charAt(0) == 'S' && payload.length() != 3) {
            throw new QemuProtocolException("malformed gdbstub stop reply " + GdbPacketCodec.preview(payload));
        }
        int start = 3;
        while (start < payload.length()) {
            int colon = payload.indexOf(':', start);
            int end = payload.indexOf(';', start);
            if (colon < 0 || end < 0 || colon > end || colon == start) {
                throw new QemuProtocolException("malformed field in gdbstub stop reply "
                        + GdbPacketCodec.preview(payload));
            }
            fields.put(payload.substring(start, colon), payload.substring(colon + 1, end));
            start = end + 1;
        }
        return new StopReply(signal, fields, OptionalInt.empty());
    }
}
