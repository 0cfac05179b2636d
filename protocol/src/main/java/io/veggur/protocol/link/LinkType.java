package io.veggur.protocol.link;

/**
 * The serial link's frame types. Codes below 0x80 travel from the guest to the host, codes from 0x80 from the host to
 * the guest, except {@link #DATA}, which travels both ways. Each type fixes the payload lengths it allows, so a
 * header alone tells whether a frame can be well formed.
 */
public enum LinkType {
    /** Guest: start a new session; payload: the guest's random nonce. */
    OPEN(0x01, true, false, LinkFrame.NONCE_BYTES, LinkFrame.NONCE_BYTES),
    /** Either way: introspection protocol bytes of the current session; never empty. */
    DATA(0x02, true, true, 1, LinkFrame.MAX_DATA),
    /** Guest: the session ends; no answer follows. */
    CLOSE(0x03, true, false, 0, 0),
    /** Guest: still alive (any frame counts; this one is sent when there is nothing else to send). */
    KEEPALIVE(0x04, true, false, 0, 0),
    /** Host: the session for this nonce is open. */
    OPENED(0x81, false, true, LinkFrame.NONCE_BYTES, LinkFrame.NONCE_BYTES),
    /** Host: the session with this nonce (zeros: whatever session the guest thinks it has) ended; then a reason. */
    CLOSED(0x83, false, true, LinkFrame.NONCE_BYTES, LinkFrame.NONCE_BYTES + LinkFrame.MAX_REASON);

    private final int code;
    private final boolean fromGuest;
    private final boolean fromHost;
    private final int minPayload;
    private final int maxPayload;

    LinkType(int code, boolean fromGuest, boolean fromHost, int minPayload, int maxPayload) {
        this.code = code;
        this.fromGuest = fromGuest;
        this.fromHost = fromHost;
        this.minPayload = minPayload;
        this.maxPayload = maxPayload;
    }

    public int code() {
        return code;
    }

    public int minPayload() {
        return minPayload;
    }

    public int maxPayload() {
        return maxPayload;
    }

    /** Whether the sender {@code from} may send this type. */
    public boolean sentBy(Sender from) {
        return from == Sender.GUEST ? fromGuest : fromHost;
    }

    /** The type with this code, or null. */
    public static LinkType of(int code) {
        for (LinkType type : values()) {
            if (type.code == code) {
                return type;
            }
        }
        return null;
    }

    /** Which end of the link wrote a byte stream: it decides which types are legal in it. */
    public enum Sender {
        GUEST, HOST
    }
}
