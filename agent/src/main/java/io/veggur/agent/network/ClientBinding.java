package io.veggur.agent.network;

import io.veggur.agent.store.VmRef;
import io.veggur.host.server.Role;
import java.net.InetAddress;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What a client certificate lets its holder do, written into the certificate as subject-alternative-name URIs:
 *
 * <pre>
 * veggur:tenant:TENANT           exactly one   who holds it (tenant-name alphabet)
 * veggur:vm:OWNER/NAME           exactly one   the VM it opens
 * veggur:role:read|trace|write   exactly one   the most its holder may do there (lower case)
 * veggur:client:ADDRESS/PREFIX   one or more   where its holder may connect from ({@link Cidr}, IPv4 or IPv6)
 * </pre>
 *
 * <p>e.g. {@code veggur:tenant:bob}, {@code veggur:vm:alice/web}, {@code veggur:role:read},
 * {@code veggur:client:10.0.0.2/32}. Other names (DNS names, other URIs) are ignored; any other {@code veggur:} URI,
 * a missing or repeated one, or a malformed value makes the whole certificate unusable. The subject's distinguished
 * name carries no authority. The validity period is the certificate's own.
 */
public record ClientBinding(String tenant, VmRef vm, Role role, List<Cidr> clients) {
    private static final String TENANT = "veggur:tenant:";
    private static final String VM = "veggur:vm:";
    private static final String ROLE = "veggur:role:";
    private static final String CLIENT = "veggur:client:";
    /** The tenant-name alphabet of the agent's store. */
    private static final Pattern TENANT_NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,31}");
    /** RFC 5280 GeneralName tag of a URI. */
    private static final int URI_NAME = 6;

    public ClientBinding {
        Objects.requireNonNull(vm, "vm");
        Objects.requireNonNull(role, "role");
        if (tenant == null || !TENANT_NAME.matcher(tenant).matches()) {
            throw new IllegalArgumentException("invalid tenant name '" + tenant + "'");
        }
        if (clients.isEmpty()) {
            throw new IllegalArgumentException("no client address block");
        }
        if (new HashSet<>(clients).size() != clients.size()) {
            throw new IllegalArgumentException("repeated client address block in " + clients);
        }
        clients = List.copyOf(clients);
    }

    /** Whether a client at this address may use the certificate. */
    public boolean allows(InetAddress address) {
        return clients.stream().anyMatch(block -> block.contains(address));
    }

    /** The subject-alternative-name URIs that carry this binding, in the form {@link #from} reads. */
    public List<String> uris() {
        List<String> uris = new ArrayList<>(List.of(TENANT + tenant, VM + vm.toString(),
                ROLE + role.name().toLowerCase(Locale.ROOT)));
        clients.forEach(block -> uris.add(CLIENT + block));
        return uris;
    }

    /** Reads the binding of a certificate (already verified against the CA); refuses anything but exactly one. */
    public static ClientBinding from(X509Certificate certificate) throws CertificateException {
        Collection<List<?>> names = certificate.getSubjectAlternativeNames();
        String tenant = null;
        String vm = null;
        String role = null;
        List<String> clients = new ArrayList<>();
        for (List<?> name : names == null ? List.<List<?>>of() : names) {
            if (!name.get(0).equals(URI_NAME) || !(name.get(1) instanceof String uri) || !uri.startsWith("veggur:")) {
                continue;
            }
            if (uri.startsWith(TENANT)) {
                tenant = single(tenant, uri, TENANT);
            } else if (uri.startsWith(VM)) {
                vm = single(vm, uri, VM);
            } else if (uri.startsWith(ROLE)) {
                role = single(role, uri, ROLE);
            } else if (uri.startsWith(CLIENT)) {
                clients.add(uri.substring(CLIENT.length()));
            } else {
                throw new CertificateException("unknown binding " + uri);
            }
        }
        required(tenant, TENANT);
        required(vm, VM);
        required(role, ROLE);
        required(clients.isEmpty() ? null : clients, CLIENT);
        try {
            int slash = vm.indexOf('/');
            if (slash < 0) {
                throw new IllegalArgumentException("VM '" + vm + "' is not OWNER/NAME");
            }
            return new ClientBinding(tenant, new VmRef(vm.substring(0, slash), vm.substring(slash + 1)),
                    role(role), clients.stream().map(Cidr::parse).toList());
        } catch (IllegalArgumentException e) {
            throw new CertificateException("malformed binding: " + e.getMessage());
        }
    }

    private static String single(String seen, String uri, String prefix) throws CertificateException {
        if (seen != null) {
            throw new CertificateException("repeated " + prefix + " binding");
        }
        return uri.substring(prefix.length());
    }

    private static void required(Object value, String prefix) throws CertificateException {
        if (value == null) {
            throw new CertificateException("no " + prefix + " binding");
        }
    }

    private static Role role(String text) {
        for (Role role : Role.values()) {
            if (role.name().toLowerCase(Locale.ROOT).equals(text)) {
                return role;
            }
        }
        throw new IllegalArgumentException("unknown role '" + text + "'");
    }
}
