package io.veggur.agent.store;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;

/**
 * Bearer tokens: {@code vgr_} and 256 random bits in base64url. Only SHA-256 of a token is stored. A plain hash
 * (no salt, no slow KDF) is enough because the token is random and high-entropy: there is nothing to guess or to
 * precompute. Looking a hash up through an index leaks through timing at most which stored hashes share a prefix
 * with the hash of the guess, which helps find no token; the final comparison is constant-time anyway.
 */
final class Tokens {
    static final int MAX_LENGTH = 128;
    private static final String PREFIX = "vgr_";
    private static final SecureRandom RANDOM = new SecureRandom();

    private Tokens() {}

    static String newToken() {
        byte[] secret = new byte[32];
        RANDOM.nextBytes(secret);
        return PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(secret);
    }

    static byte[] hash(String token) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(token.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every Java platform has SHA-256", e);
        }
    }

    static boolean matches(byte[] storedHash, byte[] candidateHash) {
        return MessageDigest.isEqual(storedHash, candidateHash);
    }
}
