package io.veggur.vmi.os.linux;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * Kernel profiles discovered before, one JSON file per kernel build ({@code <build id>.json}). A profile is only a
 * hint: discovery re-checks it against the guest (banner at the expected place, page tables that map the image)
 * before trusting it, so a stale or planted file cannot make Veggur read garbage.
 */
public final class ProfileCache {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final int MAX_PROFILES = 256;

    private final Path directory;

    public ProfileCache(Path directory) {
        this.directory = directory;
    }

    /** {@code $VEGGUR_CACHE/profiles}, else {@code $XDG_CACHE_HOME/veggur/profiles}, else ~/.cache/veggur/profiles. */
    public static ProfileCache fromEnvironment() {
        String cache = System.getenv("VEGGUR_CACHE");
        if (cache == null || cache.isBlank()) {
            String xdg = System.getenv("XDG_CACHE_HOME");
            cache = (xdg == null || xdg.isBlank() ? System.getProperty("user.home") + "/.cache" : xdg) + "/veggur";
        }
        return new ProfileCache(Path.of(cache, "profiles"));
    }

    /** Every readable profile; unreadable files are skipped (they are only a cache). */
    List<KernelProfile> all() {
        List<KernelProfile> profiles = new ArrayList<>();
        if (!Files.isDirectory(directory)) {
            return profiles;
        }
        try (Stream<Path> files = Files.list(directory)) {
            for (Path file : files.filter(f -> f.toString().endsWith(".json")).limit(MAX_PROFILES).toList()) {
                try {
                    profiles.add(MAPPER.readValue(file.toFile(), KernelProfile.class));
                } catch (IOException | RuntimeException skipped) {
                    // a damaged cache entry is rebuilt on the next discovery
                }
            }
        } catch (IOException e) {
            return profiles;
        }
        return profiles;
    }

    void save(KernelProfile profile) throws IOException {
        Files.createDirectories(directory);
        String key = profile.buildId().replaceAll("[^0-9a-zA-Z_-]", "_");
        Path file = directory.resolve(key + ".json");
        Path temporary = Files.createTempFile(directory, key, ".tmp");
        try {
            MAPPER.writeValue(temporary.toFile(), profile);
            Files.move(temporary, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(temporary);
        }
    }
}
