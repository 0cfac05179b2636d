package io.veggur.host.vm;

import java.util.regex.Pattern;

/** VM names become directory names and QEMU arguments, so they are restricted to a safe alphabet. */
public final class VmName {
    private static final Pattern VALID = Pattern.compile("[a-z0-9][a-z0-9-]{0,31}");

    private VmName() {}

    public static String check(String name) {
        if (name == null || !VALID.matcher(name).matches()) {
            throw new IllegalArgumentException("invalid VM name '" + name
                    + "': use 1-32 lower-case letters, digits and '-', starting with a letter or digit");
        }
        return name;
    }
}
