package io.veggur.protocol.link;

import java.io.IOException;

/**
 * Bytes on the serial link that are not a well-formed frame. Messages describe the problem in fixed words and numbers
 * only, never the offending bytes, so the host may pass them to the guest.
 */
public final class LinkFormatException extends IOException {
    public LinkFormatException(String message) {
        super(message);
    }
}
