package io.veggur.agent.environment;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.veggur.agent.audit.AuditEntry;
import io.veggur.agent.exec.ExecOutput;
import io.veggur.agent.exec.ExecResult;
import io.veggur.agent.network.Admission;
import io.veggur.agent.network.CertificateAuthority;
import io.veggur.agent.network.Cidr;
import io.veggur.agent.network.ClientBinding;
import io.veggur.agent.network.ConnectionDecision;
import io.veggur.agent.network.Identity;
import io.veggur.agent.network.NetworkEndpoint;
import io.veggur.agent.store.AgentStore;
import io.veggur.agent.store.Environment;
import io.veggur.agent.store.EnvironmentState;
import io.veggur.agent.store.Vm;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The network flavor: the environment's role-bound socket on TCP, served by a {@link NetworkEndpoint} inside the
 * agent, one port per environment.
 *
 * <p>By default mutual TLS 1.3: the build issues the tenant a client certificate from the agent's CA bound to the
 * tenant, the VM, the environment's role and the client address blocks asked for (the private key is in the build's
 * answer and nowhere else: the agent keeps only the serial), and the endpoint admits a certificate only while its
 * environment is READY and its serial is the one issued for it. Deleting the environment (or revoking the grant,
 * lowering it, stopping the VM) closes the endpoint and every connection; a new environment gets a new certificate,
 * so an old one is useless. Plaintext (the paper's socat mode, address allow-list only) must be asked for and is
 * logged as a warning. Every connection, allowed or refused, is one audit record {@code net.connect}.
 *
 * <p>Endpoints live in the agent: when it stops, they stop, and the next agent restarts them on the ports recorded in
 * the environments' options. Memory crosses as {@code READ_PHYSICAL} replies: the socket is opened without the
 * descriptor.
 */
public final class NetworkEnvironments implements EnvironmentFlavor {
    private static final Logger LOG = System.getLogger(NetworkEnvironments.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Duration SERVER_VALIDITY = Duration.ofDays(365);
    private static final Duration CLIENT_VALIDITY = Duration.ofDays(90);
    /** Client certificates start this much in the past, for clients whose clock lags the host's. */
    private static final Duration CLOCK_SKEW = Duration.ofMinutes(5);
    private static final SecureRandom RANDOM = new SecureRandom();

    private final EnvironmentSockets sockets;
    private final AgentStore store;
    private final CertificateAuthority ca;
    private final InetAddress bind;
    private final Map<Long, NetworkEndpoint> endpoints = new ConcurrentHashMap<>();

    /**
     * Endpoints listen on {@code bind}; the wildcard address means every interface, and then an endpoint's server
     * certificate names every address the host has when the endpoint starts.
     */
    public NetworkEnvironments(EnvironmentSockets sockets, AgentStore store, CertificateAuthority ca, InetAddress bind) {
        this.sockets = sockets;
        this.store = store;
        this.ca = ca;
        this.bind = bind;
    }

    /** The recorded choices of one network environment. {@code serial} is the client certificate's (hex), or null. */
    private record Options(int port, boolean plaintext, List<Cidr> clients, String serial) {
        String json() {
            ObjectNode node = JSON.createObjectNode().put("port", port).put("plaintext", plaintext);
            clients.forEach(block -> node.withArray("clients").add(block.toString()));
            node.put("serial", serial);
            return node.toString();
        }

        static Options parse(String json) throws IOException {
            if (json == null) {
                throw new IOException("the environment has no recorded options");
            }
            JsonNode node = JSON.readTree(json);
            List<Cidr> clients = new ArrayList<>();
            node.path("clients").forEach(block -> clients.add(Cidr.parse(block.asText())));
            return new Options(node.path("port").asInt(), node.path("plaintext").asBoolean(), clients,
                    node.path("serial").isTextual() ? node.path("serial").asText() : null);
        }
    }

    @Override
    public String handle(long environmentId) {
        return "endpoint-env-" + environmentId;
    }

    @Override
    public Built build(Environment environment, Vm vm, EnvironmentRequest request) throws IOException {
        if (request.clients().isEmpty()) {
            throw new IllegalArgumentException("a network environment needs the address blocks its clients connect from");
        }
        Path socket = sockets.open(environment, vm, false);
        Identity client = null;
        char[] password = null;
        if (!request.plaintext()) {
            password = newPassword();
            Instant now = Instant.now();
            try {
                client = ca.issueClient(new ClientBinding(environment.tenant(), environment.vm(), environment.role(),
                        request.clients()), now.minus(CLOCK_SKEW), now.plus(CLIENT_VALIDITY));
            } catch (GeneralSecurityException e) {
                throw new IOException("cannot issue the client certificate: " + e.getMessage(), e);
            }
        }
        Options options = new Options(0, request.plaintext(), request.clients(),
                client == null ? null : client.serial().toString(16));
        NetworkEndpoint endpoint = start(environment, socket, options);
        options = new Options(endpoint.address().getPort(), options.plaintext(), options.clients(), options.serial());
        if (!store.recordEnvironmentOptions(environment.id(), options.json())) {
            endpoint.close();
            endpoints.remove(environment.id());
            throw new IOException("the environment was deleted while it was being built");
        }
        if (client == null) {
            return new Built(options.json(), Map.of());
        }
        try {
            return new Built(options.json(), Map.of(
                    "identity", Base64.getEncoder().encodeToString(client.pkcs12(password)),
                    "password", new String(password)));
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot write the client identity: " + e.getMessage(), e);
        }
    }

    /** Its endpoint serves (restarted on its recorded port after an agent restart) and its socket is open. */
    @Override
    public boolean intact(Environment environment, Vm vm) throws IOException {
        Path socket = sockets.open(environment, vm, false);
        if (endpoints.containsKey(environment.id())) {
            return true;
        }
        Options options = Options.parse(environment.options());
        try {
            start(environment, socket, options);
            return true;
        } catch (IOException e) {
            LOG.log(Level.WARNING, "cannot restart the endpoint of environment " + environment.id() + ": "
                    + e.getMessage());
            return false;
        }
    }

    @Override
    public void tearDown(Environment environment, Vm vm) throws IOException {
        NetworkEndpoint endpoint = endpoints.remove(environment.id());
        if (endpoint != null) {
            endpoint.close();
        }
        sockets.close(environment, vm);
    }

    /** {@code tls://ADDRESS:PORT} (or {@code tcp://}) with the address clients are told to use. */
    @Override
    public String endpoint(Environment environment) {
        try {
            Options options = Options.parse(environment.options());
            InetAddress address = bind.isAnyLocalAddress() ? serverAddresses(bind).getFirst() : bind;
            String host = address.getHostAddress().contains(":") ? "[" + address.getHostAddress() + "]"
                    : address.getHostAddress();
            return (options.plaintext() ? "tcp://" : "tls://") + host + ":" + options.port();
        } catch (IOException e) {
            return null;
        }
    }

    @Override
    public Optional<String> execRefusal(Environment environment) {
        return Optional.of("a network environment runs nothing on the host: connect your tools to "
                + endpoint(environment));
    }

    @Override
    public ExecResult exec(Environment environment, List<String> argv, Duration timeout, ExecOutput output) {
        throw new IllegalStateException("execRefusal refuses every command");
    }

    /** Stops every endpoint (the agent is stopping; the next one restarts them). */
    public void close() {
        endpoints.values().forEach(NetworkEndpoint::close);
        endpoints.clear();
    }

    private NetworkEndpoint start(Environment environment, Path socket, Options options) throws IOException {
        NetworkEndpoint.Mode mode;
        if (options.plaintext()) {
            mode = new NetworkEndpoint.Plaintext(options.clients());
        } else {
            Identity server;
            try {
                server = ca.issueServer(serverAddresses(bind), List.of("localhost"), SERVER_VALIDITY);
            } catch (GeneralSecurityException e) {
                throw new IOException("cannot issue the endpoint's server certificate: " + e.getMessage(), e);
            }
            mode = new NetworkEndpoint.Tls(server, ca.certificate(), environment.vm(), environment.role(),
                    (binding, serial, remote) -> admit(environment.id(), binding, serial));
        }
        NetworkEndpoint endpoint = NetworkEndpoint.start(new InetSocketAddress(bind, options.port()), socket, mode,
                NetworkEndpoint.Limits.DEFAULT, decision -> audit(environment, decision));
        NetworkEndpoint previous = endpoints.put(environment.id(), endpoint);
        if (previous != null) {
            previous.close();
        }
        return endpoint;
    }

    /** The certificate must be the one issued for this environment, and the environment still READY. */
    private Admission.Decision admit(long environmentId, ClientBinding binding, BigInteger serial) {
        Environment current = store.environment(environmentId).orElse(null);
        if (current == null || current.state() != EnvironmentState.READY) {
            return Admission.Decision.deny("the environment is "
                    + (current == null ? "gone" : current.state().name().toLowerCase()));
        }
        String issued;
        try {
            issued = Options.parse(current.options()).serial();
        } catch (IOException e) {
            return Admission.Decision.deny("the environment's options are unreadable");
        }
        if (!serial.toString(16).equals(issued) || !binding.tenant().equals(current.tenant())) {
            return Admission.Decision.deny("certificate " + serial.toString(16) + " of tenant " + binding.tenant()
                    + " is not the one issued for this environment");
        }
        return Admission.Decision.allow("certificate " + serial.toString(16) + " of tenant " + binding.tenant());
    }

    private void audit(Environment environment, ConnectionDecision decision) {
        String actor = decision.tenant().map(tenant -> "tenant:" + tenant)
                .orElse("network:" + decision.remote().getAddress().getHostAddress());
        String detail = "from " + decision.remote().getAddress().getHostAddress() + ":" + decision.remote().getPort()
                + " to env " + environment.id() + ": " + decision.reason();
        String target = "vm:" + environment.vm();
        store.audit().append(decision.allowed() ? AuditEntry.allowed(actor, "net.connect", target, detail)
                : AuditEntry.denied(actor, "net.connect", target, detail));
    }

    /** The wildcard address stands for every address of every interface that is up. */
    private static List<InetAddress> serverAddresses(InetAddress bind) throws IOException {
        if (!bind.isAnyLocalAddress()) {
            return List.of(bind);
        }
        List<InetAddress> addresses = new ArrayList<>();
        try {
            for (NetworkInterface network : NetworkInterface.networkInterfaces().toList()) {
                if (network.isUp()) {
                    network.inetAddresses().filter(a -> !a.isLinkLocalAddress()).forEach(addresses::add);
                }
            }
        } catch (SocketException e) {
            throw new IOException("cannot list the host's addresses: " + e.getMessage(), e);
        }
        // Non-loopback first: the address a client is told to use.
        addresses.sort((a, b) -> Boolean.compare(a.isLoopbackAddress(), b.isLoopbackAddress()));
        return addresses;
    }

    private static char[] newPassword() {
        byte[] bytes = new byte[18];
        RANDOM.nextBytes(bytes);
        return HexFormat.of().formatHex(bytes).toCharArray();
    }
}
