package io.veggur.host.qemu;

import java.io.IOException;

/**
 * QEMU sent something its protocol does not allow: a malformed, oversized or unparsable message, or a reply that does
 * not fit the request. The connection that produced it is closed, because after a framing error neither the byte
 * stream nor the request/reply pairing can be trusted again.
 */
public final class QemuProtocolException extends IOException {
    public QemuProtocolException(String message) {
        super(message);
    }

    public QemuProtocolException(String message, Throwable cause) {
        super(message, cause);
    }
}
