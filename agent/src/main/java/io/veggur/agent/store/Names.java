package io.veggur.agent.store;

import io.veggur.host.vm.VmName;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Names and enumerations as they are stored. Tenant names use the VM-name alphabet ({@link VmName}), so neither can
 * carry a path separator, a dot or anything a shell, a URL or a container name would interpret.
 */
final class Names {
    private static final Pattern TENANT = Pattern.compile("[a-z0-9][a-z0-9-]{0,31}");

    private Names() {}

    static String tenant(String name) {
        if (name == null || !TENANT.matcher(name).matches()) {
            throw new IllegalArgumentException("invalid tenant name '" + name
                    + "': use 1-32 lower-case letters, digits and '-', starting with a letter or digit");
        }
        return name;
    }

    static String vm(String name) {
        return VmName.check(name);
    }

    static String text(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT);
    }

    static <E extends Enum<E>> E parse(Class<E> type, String text) {
        return Enum.valueOf(type, text.toUpperCase(Locale.ROOT));
    }
}
