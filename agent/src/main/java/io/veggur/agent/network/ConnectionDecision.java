package io.veggur.agent.network;

import java.math.BigInteger;
import java.net.InetSocketAddress;
import java.util.Optional;

/**
 * What a {@link NetworkEndpoint} did with one connection: exactly one per connection, allowed or denied, for the audit
 * log. {@code binding} and {@code serial} are those of a client certificate that passed the CA's verification, and
 * null when there was none (plaintext, a failed handshake) or, for {@code binding} alone, when it was malformed.
 */
public record ConnectionDecision(InetSocketAddress remote, ClientBinding binding, BigInteger serial, boolean allowed,
        String reason) {
    public Optional<String> tenant() {
        return Optional.ofNullable(binding).map(ClientBinding::tenant);
    }
}
