package io.veggur.agent.audit;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Locale;

/**
 * The hash of an audit record, defined so that anyone can recompute it from an export:
 * lower-case hex of SHA-256 over the ASCII tag {@code veggur-audit-v1\n}, then these fields in this order, each as a
 * 4-byte big-endian length followed by its UTF-8 bytes (a null detail is the length 0xFFFFFFFF and no bytes):
 * seq (decimal), time (decimal milliseconds since the epoch), actor, action, target, decision ({@code allowed} or
 * {@code denied}), detail, prev_hash. Length prefixes make the encoding unambiguous whatever the fields contain.
 */
public final class ChainHash {
    /** The prev_hash of the first record. */
    public static final String GENESIS = "0".repeat(64);
    private static final byte[] TAG = "veggur-audit-v1\n".getBytes(StandardCharsets.US_ASCII);

    private ChainHash() {}

    public static String of(long seq, Instant time, AuditEntry entry, String prevHash) {
        MessageDigest sha256 = sha256();
        sha256.update(TAG);
        field(sha256, Long.toString(seq));
        field(sha256, Long.toString(time.toEpochMilli()));
        field(sha256, entry.actor());
        field(sha256, entry.action());
        field(sha256, entry.target());
        field(sha256, decisionText(entry.decision()));
        field(sha256, entry.detail());
        field(sha256, prevHash);
        return HexFormat.of().formatHex(sha256.digest());
    }

    static String decisionText(AuditEntry.Decision decision) {
        return decision.name().toLowerCase(Locale.ROOT);
    }

    private static void field(MessageDigest digest, String value) {
        if (value == null) {
            digest.update(ByteBuffer.allocate(4).putInt(-1).array());
            return;
        }
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        digest.update(ByteBuffer.allocate(4).putInt(bytes.length).array());
        digest.update(bytes);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every Java platform has SHA-256", e);
        }
    }
}
