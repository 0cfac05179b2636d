package io.veggur.host.vm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * Where Veggur keeps its state: {@code $VEGGUR_HOME}, else /var/lib/veggur for root, else ~/.local/state/veggur.
 * Layout: {@code vms/NAME/} per VM (see {@link VmDirectory}).
 */
public record VeggurHome(Path root) {
    public static VeggurHome fromEnvironment() {
        String configured = System.getenv("VEGGUR_HOME");
        if (configured != null && !configured.isBlank()) {
            return new VeggurHome(Path.of(configured).toAbsolutePath());
        }
        if ("root".equals(System.getProperty("user.name"))) {
            return new VeggurHome(Path.of("/var/lib/veggur"));
        }
        return new VeggurHome(Path.of(System.getProperty("user.home"), ".local", "state", "veggur"));
    }

    public Path vmsDirectory() {
        return root.resolve("vms");
    }

    public VmDirectory vm(String name) {
        return new VmDirectory(vmsDirectory().resolve(VmName.check(name)));
    }

    /** Creates a directory (and parents) and forces it to mode 0700 whatever the umask. */
    public static Path privateDirectory(Path directory) throws IOException {
        Files.createDirectories(directory);
        Files.setPosixFilePermissions(directory, PosixFilePermissions.fromString("rwx------"));
        return directory;
    }

    /** Removes a directory and everything below it, if it exists; symbolic links are removed, never followed. */
    public static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(path);
            }
        }
    }
}
