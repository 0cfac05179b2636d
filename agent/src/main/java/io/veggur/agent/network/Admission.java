package io.veggur.agent.network;

import java.math.BigInteger;
import java.net.InetAddress;

/**
 * The agent's last word on a TLS client whose certificate is valid, names the endpoint's VM and allows the client's
 * address: e.g. whether the serial was revoked and whether the tenant still holds a grant at the certificate's role.
 * Called once per connection, after the handshake, on that connection's thread; an exception refuses the client.
 */
@FunctionalInterface
public interface Admission {
    Decision admit(ClientBinding binding, BigInteger serial, InetAddress remote);

    /** A reason is what the audit log shows; the client never sees it. */
    record Decision(boolean allowed, String reason) {
        public static Decision allow(String reason) {
            return new Decision(true, reason);
        }

        public static Decision deny(String reason) {
            return new Decision(false, reason);
        }
    }
}
