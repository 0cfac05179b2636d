package io.veggur.agent.environment;

import io.veggur.agent.network.Cidr;
import io.veggur.host.server.Role;
import java.util.List;

/**
 * What a tenant asked for: the socket's {@code role}, and for the network flavor the address blocks its clients
 * connect from and whether it gives up TLS for the paper's plaintext relay filtered by address.
 */
public record EnvironmentRequest(Role role, List<Cidr> clients, boolean plaintext) {
    public EnvironmentRequest {
        clients = List.copyOf(clients);
    }
}
