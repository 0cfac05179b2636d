package io.veggur.agent.network;

import java.net.InetAddress;
import java.util.Arrays;
import java.util.regex.Pattern;

/**
 * An IPv4 or IPv6 address block, {@code ADDRESS/PREFIX}. Parsing is strict, since blocks come from certificates and
 * configuration: a literal address (never a host name, so no lookup happens), no IPv6 scope, an explicit prefix
 * within the family's width, and no host bits set ({@code 10.0.0.1/24} is refused: it would be ambiguous).
 * An IPv4 block never contains an IPv6 address and vice versa; the JDK reports IPv4 clients of a dual-stack
 * listener as IPv4 addresses.
 */
public record Cidr(InetAddress network, int prefix) {
    private static final Pattern IPV4 = Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}");

    public Cidr {
        int width = network.getAddress().length * 8;
        if (prefix < 0 || prefix > width) {
            throw new IllegalArgumentException("prefix /" + prefix + " out of range for " + network.getHostAddress());
        }
        if (!Arrays.equals(mask(network.getAddress(), prefix), network.getAddress())) {
            throw new IllegalArgumentException("address block " + network.getHostAddress() + "/" + prefix
                    + " has host bits set");
        }
    }

    public static Cidr parse(String text) {
        int slash = text.indexOf('/');
        if (slash < 0) {
            throw new IllegalArgumentException("address block '" + text + "' has no /PREFIX");
        }
        String address = text.substring(0, slash);
        String prefix = text.substring(slash + 1);
        boolean literal = address.contains(":") ? !address.contains("%") : IPV4.matcher(address).matches();
        if (!literal || !prefix.matches("\\d{1,3}")) {
            throw new IllegalArgumentException("malformed address block '" + text + "'");
        }
        try {
            return new Cidr(InetAddress.ofLiteral(address), Integer.parseInt(prefix));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("malformed address block '" + text + "': " + e.getMessage());
        }
    }

    public boolean contains(InetAddress address) {
        byte[] bytes = address.getAddress();
        return bytes.length == network.getAddress().length
                && Arrays.equals(mask(bytes, prefix), network.getAddress());
    }

    /** The canonical form, which {@link #parse} reads back: {@code 10.0.0.0/8}, {@code fd00:0:0:0:0:0:0:0/64}. */
    @Override
    public String toString() {
        return network.getHostAddress() + "/" + prefix;
    }

    private static byte[] mask(byte[] address, int prefix) {
        byte[] masked = address.clone();
        for (int i = 0; i < masked.length; i++) {
            int bits = Math.clamp(prefix - i * 8L, 0, 8);
            masked[i] &= (byte) (0xFF00 >>> bits);
        }
        return masked;
    }
}
