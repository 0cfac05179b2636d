package io.veggur.cli;

import java.util.Locale;

/** Parses sizes ("256M", "5G", "4096") and addresses ("0x1000", "4096") given on the command line. */
final class Sizes {
    private Sizes() {}

    static long parseSize(String text) {
        String s = text.strip().toUpperCase(Locale.ROOT);
        long unit = 1;
        if (s.endsWith("IB")) {
            s = s.substring(0, s.length() - 2);
        } else if (s.endsWith("B")) {
            s = s.substring(0, s.length() - 1);
        }
        if (!s.isEmpty()) {
            unit = switch (s.charAt(s.length() - 1)) {
                case 'K' -> 1L << 10;
                case 'M' -> 1L << 20;
                case 'G' -> 1L << 30;
                case 'T' -> 1L << 40;
                default -> 1;
            };
            if (unit != 1) {
                s = s.substring(0, s.length() - 1);
            }
        }
        try {
            long value = parseNumber(s);
            if (value < 0 || value > Long.MAX_VALUE / unit) {
                throw new NumberFormatException();
            }
            return value * unit;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid size '" + text + "' (examples: 4096, 64K, 256M, 5G)");
        }
    }

    static long parseAddress(String text) {
        try {
            return parseNumber(text.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid address '" + text + "' (examples: 0x1000, 4096)");
        }
    }

    private static long parseNumber(String s) {
        if (s.startsWith("0x") || s.startsWith("0X")) {
            return Long.parseUnsignedLong(s.substring(2), 16);
        }
        return Long.parseLong(s);
    }
}
