package io.veggur.host.vm;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The test guest built by guest/build.sh: {@code $VEGGUR_GUEST_DIR}, else the cache's {@code guest/default}.
 */
public record BuiltinGuest(Path kernel, Path initrd) {
    /** Serial console on ttyS0 (read by tests and humans), no reboot loop on panic. */
    public static final String APPEND = "console=ttyS0 panic=-1 quiet";

    public static BuiltinGuest locate() throws VmException {
        Path directory = directory();
        BuiltinGuest guest = new BuiltinGuest(directory.resolve("vmlinuz"), directory.resolve("initramfs.cpio.gz"));
        if (!Files.isReadable(guest.kernel()) || !Files.isReadable(guest.initrd())) {
            throw new VmException("the built-in test guest is not built (looked in " + directory
                    + "); build it with guest/build.sh, or run through ./veggur, which builds it");
        }
        return guest;
    }

    private static Path directory() {
        String configured = System.getenv("VEGGUR_GUEST_DIR");
        if (configured != null && !configured.isBlank()) {
            return Path.of(configured);
        }
        String cache = System.getenv("VEGGUR_CACHE");
        if (cache == null || cache.isBlank()) {
            String xdg = System.getenv("XDG_CACHE_HOME");
            cache = (xdg == null || xdg.isBlank() ? System.getProperty("user.home") + "/.cache" : xdg) + "/veggur";
        }
        return Path.of(cache, "guest", "default");
    }
}
